//! What every fuzz target shares: one seeded demo world (root, issuers,
//! bundle, status lists, a licence) built once, and a form schema like the
//! server validates submissions against.

use std::sync::OnceLock;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use zhangban_core::credential::demo::DemoWorld;
use zhangban_core::credential::{HeldLicence, StatusListCache, TrustBundle};
use zhangban_core::guide::FormSchema;
use zhangban_core::guide::fixture::{FixtureItem, guide_from_fixture};

/// The world's time (2026-11-18).
pub const NOW: i64 = 1_795_000_000;
/// The seed of the world (printed by `gen_corpus`).
pub const SEED: u64 = 13;

/// The shared fixture.
pub struct Fixture {
    /// The demo world.
    pub world: DemoWorld,
    /// An issued licence.
    pub held: HeldLicence,
    /// A form schema of a real service item.
    pub form: FormSchema,
}

impl Fixture {
    /// The verified bundle.
    pub fn bundle(&self) -> &TrustBundle {
        &self.world.bundle
    }
    /// The status lists signed at [`NOW`].
    pub fn status(&self) -> &StatusListCache {
        &self.world.status_cache
    }
}

/// The fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(SEED);
        let world = DemoWorld::new(&mut rng, NOW);
        let issued = world
            .issue_typical(7, &mut rng)
            .unwrap_or_else(|e| panic!("demo licence: {e}"));
        let held = HeldLicence::parse(&issued).unwrap_or_else(|e| panic!("demo licence: {e}"));
        let item: FixtureItem = serde_json::from_value(serde_json::json!({
            "department": "广安市市场监督管理局",
            "main_item": "未分类",
            "name": "企业设立登记",
            "item_code": "11511600MB1590032T4000117002000",
            "task_type": "1",
            "dept_code": "11511600MB1590032T",
            "area_code": "511600000000",
        }))
        .unwrap_or_else(|e| panic!("fixture item: {e}"));
        let form = guide_from_fixture(&item, 1, NOW).form;
        Fixture { world, held, form }
    })
}

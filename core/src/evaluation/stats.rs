//! Evaluation statistics for operators: counts per level, 好评率, per
//! department and per item. The input carries no resident at all, so the
//! statistics cannot name one.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Grade, Level};

/// One rating as the statistics see it: where, and how satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rated {
    /// The department code of the item.
    pub department: String,
    /// The item (guide id).
    pub guide_id: String,
    /// The level given.
    pub level: Level,
}

/// Counts of one group of ratings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Tally {
    /// Per level, from 非常不满意 to 非常满意 ([`Level::ALL`]'s order).
    pub levels: [u64; 5],
}

impl Tally {
    /// Adds one rating.
    pub fn add(&mut self, level: Level) {
        if let Some(i) = Level::ALL.iter().position(|l| *l == level) {
            self.levels[i] += 1;
        }
    }

    /// How many ratings.
    pub fn total(&self) -> u64 {
        self.levels.iter().sum()
    }

    /// How many of a grade.
    pub fn of(&self, grade: Grade) -> u64 {
        Level::ALL
            .iter()
            .zip(self.levels)
            .filter(|(l, _)| l.grade() == grade)
            .map(|(_, n)| n)
            .sum()
    }

    /// 好评率: 好评 over all ratings (`None` with no ratings).
    pub fn good_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.of(Grade::Good) as f64 / total as f64)
    }
}

/// Ratings tallied per department code.
pub fn by_department(ratings: &[Rated]) -> BTreeMap<String, Tally> {
    tally(ratings, |r| r.department.clone())
}

/// Ratings tallied per item, with the item's department.
pub fn by_item(ratings: &[Rated]) -> BTreeMap<(String, String), Tally> {
    tally(ratings, |r| (r.department.clone(), r.guide_id.clone()))
}

fn tally<K: Ord>(ratings: &[Rated], key: impl Fn(&Rated) -> K) -> BTreeMap<K, Tally> {
    let mut out: BTreeMap<K, Tally> = BTreeMap::new();
    for r in ratings {
        out.entry(key(r)).or_default().add(r.level);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rated(dept: &str, guide: &str, level: Level) -> Rated {
        Rated {
            department: dept.into(),
            guide_id: guide.into(),
            level,
        }
    }

    #[test]
    fn tallies_count_levels_grades_and_the_good_rate() {
        let ratings = vec![
            rated("d1", "g1", Level::VerySatisfied),
            rated("d1", "g1", Level::Satisfied),
            rated("d1", "g2", Level::BasicallySatisfied),
            rated("d1", "g2", Level::VeryDissatisfied),
            rated("d2", "g3", Level::Dissatisfied),
        ];
        let by_dept = by_department(&ratings);
        let d1 = by_dept["d1"];
        assert_eq!(d1.levels, [1, 0, 1, 1, 1]);
        assert_eq!(d1.total(), 4);
        assert_eq!(
            (d1.of(Grade::Good), d1.of(Grade::Neutral), d1.of(Grade::Bad)),
            (2, 1, 1)
        );
        assert_eq!(d1.good_rate(), Some(0.5));
        assert_eq!(by_dept["d2"].good_rate(), Some(0.0));
        assert_eq!(Tally::default().good_rate(), None);
        let by_item = by_item(&ratings);
        assert_eq!(by_item[&("d1".to_owned(), "g2".to_owned())].total(), 2);
        assert_eq!(by_item.len(), 3);
    }
}

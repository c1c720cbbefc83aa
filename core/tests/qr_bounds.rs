//! The QR reader under hostile images (issue 13, findings 3 and 4): every
//! image is decoded or refused; none may hang or blow up memory. Images are
//! generated here, never committed. No timing is asserted: the cost is
//! measured by `cargo bench -p zhangban-core --bench inspect` (hostile set).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "shared/hostile_png.rs"]
mod hostile;

use hostile::{header_only, lattice, strip};
use zhangban_core::inspection::qr::{self, Qr, QrError, read_png};

#[test]
fn finder_lattices_are_refused() {
    for n in [30, 40] {
        let png = lattice(n);
        assert!(png.len() < 64 * 1024, "{n}: {} bytes", png.len());
        let r = read_png(&png);
        assert!(
            matches!(r, Err(QrError::OutOfBounds)),
            "{n}×{n} lattice: {r:?}"
        );
    }
}

#[test]
fn thin_strips_are_refused_before_decoding() {
    for (w, h) in [(67_108_864, 1), (1, 67_108_864)] {
        let png = strip(w, h);
        assert!(png.len() < 1024 * 1024, "{w}×{h}: {} bytes", png.len());
        assert_eq!(read_png(&png), Err(QrError::OutOfBounds), "{w}×{h}");
    }
    // Beyond the side, the pixel count or the aspect ratio, without pixels.
    for (w, h) in [
        (qr::MAX_SIDE + 1, qr::MAX_SIDE / 2),
        (4000, 4000),
        (2000, 400),
    ] {
        assert_eq!(
            read_png(&header_only(w, h)),
            Err(QrError::OutOfBounds),
            "{w}×{h}"
        );
    }
}

/// A code as a 1-bit, a palette, a 16-bit and an RGBA image: all read back.
#[test]
fn any_bit_depth_and_palette_decodes() {
    let data = b"zhangban issue 13: bit depths";
    let code = Qr::new(data).unwrap();
    let scale = 4;
    let side = (code.width() as u32 + 8) * scale;
    let dark = |x: u32, y: u32| {
        let (mx, my) = ((x / scale) as i64 - 4, (y / scale) as i64 - 4);
        mx >= 0
            && my >= 0
            && (mx as usize) < code.width()
            && (my as usize) < code.width()
            && code.is_dark(mx as usize, my as usize)
    };
    let encode =
        |color: png::ColorType, depth: png::BitDepth, palette: Option<Vec<u8>>, data: Vec<u8>| {
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, side, side);
            enc.set_color(color);
            enc.set_depth(depth);
            if let Some(p) = palette {
                enc.set_palette(p);
            }
            enc.write_header().unwrap().write_image_data(&data).unwrap();
            out
        };
    // 1-bit greyscale: 8 pixels a byte, most significant bit first.
    let mut one_bit = Vec::new();
    for y in 0..side {
        let mut row = vec![0u8; side.div_ceil(8) as usize];
        for x in 0..side {
            if !dark(x, y) {
                row[(x / 8) as usize] |= 0x80 >> (x % 8);
            }
        }
        one_bit.extend(row);
    }
    // Palette, 8 bits an index: 0 = dark red, 1 = white.
    let mut indexed = Vec::new();
    let mut rgba = Vec::new();
    let mut sixteen = Vec::new();
    for y in 0..side {
        for x in 0..side {
            let d = dark(x, y);
            indexed.push(u8::from(!d));
            rgba.extend(if d {
                [20, 0, 60, 255]
            } else {
                [250, 250, 240, 255]
            });
            sixteen.extend(if d { [0u8, 0] } else { [255, 255] });
        }
    }
    for (label, png) in [
        (
            "1-bit",
            encode(png::ColorType::Grayscale, png::BitDepth::One, None, one_bit),
        ),
        (
            "palette",
            encode(
                png::ColorType::Indexed,
                png::BitDepth::Eight,
                Some(vec![80, 0, 0, 255, 255, 255]),
                indexed,
            ),
        ),
        (
            "16-bit",
            encode(
                png::ColorType::Grayscale,
                png::BitDepth::Sixteen,
                None,
                sixteen,
            ),
        ),
        (
            "rgba",
            encode(png::ColorType::Rgba, png::BitDepth::Eight, None, rgba),
        ),
    ] {
        assert_eq!(read_png(&png), Ok(vec![data.to_vec()]), "{label}");
    }
}

/// A large rendering (about 1900 px square) is downscaled and still reads.
#[test]
fn large_and_noisy_images_still_read() {
    let data = vec![0x5a; 800];
    let code = Qr::new(&data).unwrap();
    let big = code.to_png(16);
    assert!(big.len() > 1000);
    assert_eq!(read_png(&big), Ok(vec![data.clone()]));
}

//! Hostile PNG images for the QR reader (issue 13), generated, never
//! committed: shared by `tests/qr_bounds.rs` and `benches/inspect.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

/// A greyscale PNG of `w`×`h` pixels from `pixel(x, y)`.
pub fn grey_png(w: u32, h: u32, pixel: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let mut data = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            data.push(pixel(x, y));
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

/// Whether (x, y) is dark in a finder pattern of `module` px whose top-left is (0, 0).
fn finder(x: u32, y: u32, module: u32) -> bool {
    let (mx, my) = (x / module, y / module);
    if mx >= 7 || my >= 7 {
        return false;
    }
    let ring = mx.min(my).min(6 - mx).min(6 - my);
    ring != 1
}

/// An `n`×`n` lattice of finder patterns (the review's: 30×30 is 1352 px square).
pub fn lattice(n: u32) -> Vec<u8> {
    let module = 4;
    let cell = 45;
    let side = n * cell + 2;
    grey_png(side, side, |x, y| {
        let (cx, cy) = (x.saturating_sub(1) % cell, y.saturating_sub(1) % cell);
        if x >= 1 && y >= 1 && finder(cx, cy, module) {
            0
        } else {
            255
        }
    })
}

/// A genuine 1-bit PNG of `w`×`h` white pixels, its zlib stream made
/// chunk by chunk (the raw rows are never held whole).
pub fn strip(w: u32, h: u32) -> Vec<u8> {
    let row = 1 + w.div_ceil(8) as usize; // filter byte + pixels
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let mut chunk = Vec::with_capacity(1 << 16);
    let mut left = row * h as usize;
    let mut pos = 0usize;
    while left > 0 {
        chunk.clear();
        while chunk.len() < (1 << 16) && left > 0 {
            chunk.push(if pos % row == 0 { 0 } else { 0xff });
            pos += 1;
            left -= 1;
        }
        z.write_all(&chunk).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    chunk_to(&mut out, b"IHDR", &ihdr);
    chunk_to(&mut out, b"IDAT", &idat);
    chunk_to(&mut out, b"IEND", &[]);
    out
}

fn chunk_to(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG signature and IHDR claiming `w`×`h`, then nothing.
pub fn header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk_to(&mut out, b"IHDR", &ihdr);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

//! QR codes of presentation frames, at error correction level M (survives a
//! scratched card or a cracked screen, still fits a typical licence), in
//! byte mode. Rendered as SVG (print), PNG (screens, files) or terminal
//! text (the CLI); read back from a PNG image.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode, Version};

/// Quiet zone around the code, in modules (the standard asks for 4).
pub const QUIET_ZONE: u32 = 4;

/// Why a code could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// The data does not fit a QR code at level M.
    #[error("too much data for a QR code")]
    TooLong,
    /// The image could not be decoded as a PNG.
    #[error("not a readable PNG image")]
    BadImage,
    /// No QR code was found in the image, or it could not be read.
    #[error("no readable QR code in the image")]
    NotFound,
    /// The image is too large, too thin, or holds too many finder patterns
    /// to be a scan of a code: refused before the work grows with it.
    #[error("image too large, too thin or too busy to be a QR code")]
    OutOfBounds,
}

/// A QR code of a frame.
#[derive(Clone)]
pub struct Qr {
    code: QrCode,
}

impl std::fmt::Debug for Qr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qr")
            .field("version", &self.version())
            .field("width", &self.width())
            .finish()
    }
}

impl Qr {
    /// The code for `data`, at level M, byte mode, smallest version that fits.
    pub fn new(data: &[u8]) -> Result<Self, QrError> {
        QrCode::with_error_correction_level(data, EcLevel::M)
            .map(|code| Self { code })
            .map_err(|_| QrError::TooLong)
    }

    /// The QR version (1–40).
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(v) | Version::Micro(v) => v,
        }
    }

    /// Modules per side (without the quiet zone).
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// Whether the module at (x, y) is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.code[(x, y)] == Color::Dark
    }

    /// An SVG document, `module_px` user units per module, with quiet zone.
    pub fn to_svg(&self, module_px: u32) -> String {
        self.code
            .render::<svg::Color<'_>>()
            .module_dimensions(module_px, module_px)
            .quiet_zone(true)
            .build()
    }

    /// Only the `<path>` of the dark modules, in module units from (0, 0),
    /// for embedding in a larger SVG (a printable card).
    pub fn svg_path(&self) -> String {
        let w = self.width();
        let mut d = String::with_capacity(w * w);
        for y in 0..w {
            let mut x = 0;
            while x < w {
                if self.is_dark(x, y) {
                    let start = x;
                    while x < w && self.is_dark(x, y) {
                        x += 1;
                    }
                    d.push_str(&format!("M{start} {y}h{}v1h-{}z", x - start, x - start));
                } else {
                    x += 1;
                }
            }
        }
        format!(r##"<path fill="#000" d="{d}"/>"##)
    }

    /// Text for a terminal: two rows of modules per line (▀ ▄ █), dark on
    /// light, with the quiet zone.
    pub fn to_terminal(&self) -> String {
        let w = self.width();
        let q = QUIET_ZONE as usize;
        let full = w + 2 * q;
        let dark = |x: usize, y: usize| -> bool {
            x >= q && y >= q && x < q + w && y < q + w && self.is_dark(x - q, y - q)
        };
        let mut out = String::with_capacity(full * (full / 2 + 1) * 3);
        let mut y = 0;
        while y < full {
            for x in 0..full {
                // Light modules are printed as ink (terminals are dark).
                let top = !dark(x, y);
                let bottom = y + 1 < full && !dark(x, y + 1);
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
            y += 2;
        }
        out
    }

    /// A grayscale PNG, `scale` pixels per module, with quiet zone.
    pub fn to_png(&self, scale: u32) -> Vec<u8> {
        let scale = scale.clamp(1, 64) as usize;
        let q = QUIET_ZONE as usize;
        let w = self.width();
        let side = (w + 2 * q) * scale;
        let mut pixels = vec![255u8; side * side];
        for y in 0..w {
            for x in 0..w {
                if self.is_dark(x, y) {
                    for dy in 0..scale {
                        let row = ((y + q) * scale + dy) * side;
                        let from = row + (x + q) * scale;
                        pixels[from..from + scale].fill(0);
                    }
                }
            }
        }
        let mut out = Vec::new();
        let side32 = u32::try_from(side).unwrap_or(u32::MAX);
        {
            let mut enc = png::Encoder::new(&mut out, side32, side32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            // Writing to a Vec cannot fail but for a bug; an empty result
            // then tells the caller (and its test) so.
            if let Ok(mut w) = enc.write_header() {
                let _ = w.write_image_data(&pixels);
            }
        }
        out
    }
}

/// The longest side of an image the reader accepts, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// The most pixels the reader decodes (4 Mpx, e.g. 2048×2048 or a
/// 1440×2560 screenshot): decoding is linear in pixels, and 12 Mpx took
/// 2.5× the 200 ms budget on the reference machine (ADR 0104).
pub const MAX_PIXELS: u64 = 4 * 1024 * 1024;
/// The largest ratio of the longer to the shorter side: a QR code is square
/// and a phone screenshot is about 2.2; a strip of 67,108,864×1 pixels is
/// not a scan.
pub const MAX_ASPECT: u32 = 4;
/// Images are box-downscaled so that their longer side is at most this
/// (a version-25 code keeps 8 pixels per module).
pub const WORK_SIDE: u32 = 1024;
/// The most finder-pattern candidates an image may hold (a code has 3; a
/// few codes side by side, and noise, stay far below).
pub const MAX_FINDER_CANDIDATES: usize = 40;
/// The most candidate triples tried (each costs a copy of the working image).
pub const MAX_GROUPING_ATTEMPTS: usize = 64;
/// Memory the PNG decoder may allocate for its own state (not the pixels,
/// which are streamed row by row into the working image).
const DECODER_LIMIT_BYTES: usize = 8 * 1024 * 1024;
/// An interlaced image is decoded whole; only up to this many pixels.
const MAX_INTERLACED_PIXELS: u64 = 4 * 1024 * 1024;

/// Refuses dimensions no scan has, before any pixel is decoded.
fn check_shape(w: u32, h: u32) -> Result<(), QrError> {
    let (long, short) = (w.max(h), w.min(h));
    if short == 0
        || long > MAX_SIDE
        || u64::from(w) * u64::from(h) > MAX_PIXELS
        || long > short.saturating_mul(MAX_ASPECT)
    {
        return Err(QrError::OutOfBounds);
    }
    Ok(())
}

/// A greyscale working image, box-downscaled by an integer factor while the
/// rows stream in.
struct WorkImage {
    scale: usize,
    width: usize,
    height: usize,
    sums: Vec<u32>,
    src_w: usize,
    src_h: usize,
}

impl WorkImage {
    fn new(w: u32, h: u32) -> Self {
        let (w, h) = (w as usize, h as usize);
        let scale = w.max(h).div_ceil(WORK_SIDE as usize).max(1);
        let (width, height) = (w.div_ceil(scale), h.div_ceil(scale));
        Self {
            scale,
            width,
            height,
            sums: vec![0; width * height],
            src_w: w,
            src_h: h,
        }
    }

    /// Adds source row `y` (8-bit samples, `channels` per pixel).
    fn add_row(&mut self, y: usize, row: &[u8], channels: usize) {
        let base = (y / self.scale) * self.width;
        for (x, px) in row.chunks_exact(channels).take(self.src_w).enumerate() {
            let luma = match *px {
                [r, g, b, ..] if channels >= 3 => {
                    (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000
                }
                [l, ..] => u32::from(l),
                [] => 255,
            };
            if let Some(cell) = self.sums.get_mut(base + x / self.scale) {
                *cell += luma;
            }
        }
    }

    /// The mean of the cell at (x, y).
    fn pixel(&self, x: usize, y: usize) -> u8 {
        let cw = self.scale.min(self.src_w - x * self.scale);
        let ch = self.scale.min(self.src_h - y * self.scale);
        let n = u32::try_from((cw * ch).max(1)).unwrap_or(u32::MAX);
        let sum = self.sums.get(y * self.width + x).copied().unwrap_or(0);
        u8::try_from(sum / n).unwrap_or(255)
    }
}

/// Reads every QR code in a PNG image; returns their raw bytes.
///
/// The cost is bounded whatever the image (ADR 0104): dimensions and aspect
/// ratio are refused before decoding ([`QrError::OutOfBounds`]), any bit
/// depth and palette is normalised to 8-bit, rows stream into a working
/// image of at most [`WORK_SIDE`]² pixels, and the detector refuses an image
/// with more than [`MAX_FINDER_CANDIDATES`] finder patterns and tries at
/// most [`MAX_GROUPING_ATTEMPTS`] candidate triples.
pub fn read_png(png_bytes: &[u8]) -> Result<Vec<Vec<u8>>, QrError> {
    // The dimensions, straight from IHDR (always the first chunk), before
    // the decoder sizes anything by them.
    if let (Some(b"IHDR"), Some(w), Some(h)) = (
        png_bytes.get(12..16),
        png_bytes.get(16..20),
        png_bytes.get(20..24),
    ) {
        let be = |b: &[u8]| b.try_into().map(u32::from_be_bytes).unwrap_or(0);
        check_shape(be(w), be(h))?;
    }
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_limits(png::Limits {
        bytes: DECODER_LIMIT_BYTES,
    });
    let mut reader = decoder.read_info().map_err(|_| QrError::BadImage)?;
    let (w, h, interlaced) = {
        let info = reader.info();
        (info.width, info.height, info.interlaced)
    };
    check_shape(w, h)?;
    let (color, depth) = reader.output_color_type();
    if depth != png::BitDepth::Eight {
        return Err(QrError::BadImage);
    }
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(QrError::BadImage),
    };
    let mut work = WorkImage::new(w, h);
    if interlaced {
        if u64::from(w) * u64::from(h) > MAX_INTERLACED_PIXELS {
            return Err(QrError::OutOfBounds);
        }
        let size = reader.output_buffer_size().ok_or(QrError::BadImage)?;
        let mut buf = vec![0u8; size];
        let info = reader.next_frame(&mut buf).map_err(|_| QrError::BadImage)?;
        for (y, row) in buf
            .chunks(info.line_size.max(1))
            .take(h as usize)
            .enumerate()
        {
            work.add_row(y, row, channels);
        }
    } else {
        let mut y = 0;
        while let Some(row) = reader.next_row().map_err(|_| QrError::BadImage)? {
            work.add_row(y, row.data(), channels);
            y += 1;
        }
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(work.width, work.height, |x, y| {
        work.pixel(x, y)
    });
    let grids = img
        .detect_grids_bounded(MAX_FINDER_CANDIDATES, MAX_GROUPING_ATTEMPTS)
        .map_err(|_| QrError::OutOfBounds)?;
    let mut found = Vec::new();
    for grid in grids {
        let mut bytes = Vec::new();
        if grid.decode_to(&mut bytes).is_ok() {
            found.push(bytes);
        }
    }
    if found.is_empty() {
        return Err(QrError::NotFound);
    }
    Ok(found)
}

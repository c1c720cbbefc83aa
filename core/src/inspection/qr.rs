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

/// Reads every QR code in a PNG image; returns their raw bytes.
pub fn read_png(png_bytes: &[u8]) -> Result<Vec<Vec<u8>>, QrError> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().map_err(|_| QrError::BadImage)?;
    let size = reader.output_buffer_size().ok_or(QrError::BadImage)?;
    if size > 64 * 1024 * 1024 {
        return Err(QrError::BadImage);
    }
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|_| QrError::BadImage)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(QrError::BadImage),
    };
    if info.bit_depth != png::BitDepth::Eight {
        return Err(QrError::BadImage);
    }
    let stride = info.line_size;
    let luma = |x: usize, y: usize| -> u8 {
        let i = y * stride + x * channels;
        match channels {
            1 | 2 => buf[i],
            _ => {
                let (r, g, b) = (
                    u32::from(buf[i]),
                    u32::from(buf[i + 1]),
                    u32::from(buf[i + 2]),
                );
                u8::try_from((r * 299 + g * 587 + b * 114) / 1000).unwrap_or(255)
            }
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, luma);
    let mut found = Vec::new();
    for grid in img.detect_grids() {
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

//! Basic facts about an attached object read from its first bytes: media
//! type, and pixel dimensions for images (`imagesize` reads them from the
//! header). PDF page counts are not read: that needs the whole file and a
//! PDF parser, and no small, well-kept crate does it cheaply.

/// What the header of an object says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sniffed {
    /// Media type, when recognised.
    pub media_type: Option<&'static str>,
    /// Width and height in pixels, for images.
    pub dimensions: Option<(u64, u64)>,
}

/// Reads the media type and image dimensions from the first bytes.
pub fn sniff(header: &[u8]) -> Sniffed {
    if header.starts_with(b"%PDF-") {
        return Sniffed { media_type: Some("application/pdf"), dimensions: None };
    }
    let media_type = match imagesize::image_type(header) {
        Ok(imagesize::ImageType::Png) => Some("image/png"),
        Ok(imagesize::ImageType::Jpeg) => Some("image/jpeg"),
        Ok(imagesize::ImageType::Gif) => Some("image/gif"),
        Ok(imagesize::ImageType::Webp) => Some("image/webp"),
        Ok(imagesize::ImageType::Bmp) => Some("image/bmp"),
        Ok(imagesize::ImageType::Tiff) => Some("image/tiff"),
        Ok(_) => Some("image/x-unknown"),
        Err(_) => None,
    };
    let dimensions =
        media_type.and_then(|_| imagesize::blob_size(header).ok()).map(|size| (size.width as u64, size.height as u64));
    Sniffed { media_type, dimensions }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 PNG header (signature and IHDR).
    pub(crate) const PNG_3X2: [u8; 33] = [
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 3, 0, 0, 0, 2, 8,
        2, 0, 0, 0, 0x12, 0x16, 0xF1, 0x4D,
    ];

    #[test]
    fn sniffs_pdf_and_png() {
        assert_eq!(sniff(b"%PDF-1.7\n...").media_type, Some("application/pdf"));
        assert_eq!(sniff(&PNG_3X2), Sniffed { media_type: Some("image/png"), dimensions: Some((3, 2)) });
        assert_eq!(sniff(b"hello"), Sniffed::default());
    }
}

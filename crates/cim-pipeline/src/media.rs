//! Reading documents and images: the text of a PDF (`pdf-extract`, on
//! `lopdf`) and the facts of an image (`imagesize`). Both parsers run on the
//! blocking pool, a PDF's with a time limit and with panics caught: a
//! malformed document fails its input, never the engine.

use std::time::Duration;

use serde_json::{Value, json};

/// The text of each page of a PDF.
pub async fn pdf_text(bytes: Vec<u8>, timeout: Duration) -> Result<Vec<String>, String> {
    if !bytes.starts_with(b"%PDF-") {
        return Err("the object is not a PDF (it does not start with %PDF-)".to_owned());
    }
    let work = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(&bytes))
    });
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(format!("extracting the PDF's text took longer than {timeout:?}")),
        Ok(Err(join)) => Err(format!("extracting the PDF's text failed: {join}")),
        Ok(Ok(Err(_panic))) => Err("the PDF cannot be read (the parser gave up on it)".to_owned()),
        Ok(Ok(Ok(Err(error)))) => Err(format!("the PDF cannot be read: {error}")),
        Ok(Ok(Ok(Ok(pages)))) => Ok(pages.into_iter().map(|page| page.trim_end().to_owned()).collect()),
    }
}

/// Media type and pixel dimensions of an image.
pub fn image_facts(bytes: &[u8]) -> Result<Value, String> {
    let media_type = match imagesize::image_type(bytes) {
        Ok(imagesize::ImageType::Png) => "image/png",
        Ok(imagesize::ImageType::Jpeg) => "image/jpeg",
        Ok(imagesize::ImageType::Gif) => "image/gif",
        Ok(imagesize::ImageType::Webp) => "image/webp",
        Ok(imagesize::ImageType::Bmp) => "image/bmp",
        Ok(imagesize::ImageType::Tiff) => "image/tiff",
        Ok(_) => "image/x-unknown",
        Err(_) => return Err("the object is not an image of a known type".to_owned()),
    };
    let size = imagesize::blob_size(bytes).map_err(|e| format!("the image's header cannot be read: {e}"))?;
    Ok(json!({"size": bytes.len(), "media_type": media_type, "width": size.width, "height": size.height}))
}

/// A PDF of one page per text, in the standard Helvetica font, for tests
/// and the demo.
pub fn make_pdf(pages: &[&str]) -> Vec<u8> {
    use pdf_extract::{Dictionary, Document, Object, Stream, StringFormat};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Font".to_vec())),
        ("Subtype", Object::Name(b"Type1".to_vec())),
        ("BaseFont", Object::Name(b"Helvetica".to_vec())),
    ]));
    let resources_id = doc.add_object(Dictionary::from_iter([(
        "Font",
        Object::Dictionary(Dictionary::from_iter([("F1", Object::Reference(font_id))])),
    )]));
    let mut kids = Vec::new();
    for text in pages {
        let escaped = text.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
        let content = format!("BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET");
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.into_bytes()));
        let page_id = doc.add_object(Dictionary::from_iter([
            ("Type", Object::Name(b"Page".to_vec())),
            ("Parent", Object::Reference(pages_id)),
            ("Contents", Object::Reference(content_id)),
        ]));
        kids.push(Object::Reference(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(Dictionary::from_iter([
            ("Type", Object::Name(b"Pages".to_vec())),
            ("Kids", Object::Array(kids)),
            ("Count", Object::Integer(count)),
            ("Resources", Object::Reference(resources_id)),
            ("MediaBox", Object::Array(vec![0.into(), 0.into(), 612.into(), 792.into()])),
        ])),
    );
    let catalog_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Catalog".to_vec())),
        ("Pages", Object::Reference(pages_id)),
    ]));
    doc.trailer.set("Root", catalog_id);
    let _ = StringFormat::Literal;
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("writing a PDF to memory");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn extracts_the_text_of_each_page() {
        let pdf = make_pdf(&["Hello from page one", "And page two"]);
        let pages = pdf_text(pdf, Duration::from_secs(30)).await.unwrap();
        assert_eq!(pages.len(), 2);
        assert!(pages[0].contains("Hello from page one"), "{pages:?}");
        assert!(pages[1].contains("And page two"), "{pages:?}");
    }

    #[tokio::test]
    async fn bad_documents_fail_without_panicking() {
        assert!(pdf_text(b"not a pdf".to_vec(), Duration::from_secs(5)).await.unwrap_err().contains("not a PDF"));
        let mut broken = make_pdf(&["x"]);
        broken.truncate(40);
        assert!(pdf_text(broken, Duration::from_secs(30)).await.is_err());
        let garbage: Vec<u8> =
            b"%PDF-1.7\n".iter().copied().chain((0..5000u32).map(|i| (i * 7919 % 251) as u8)).collect();
        assert!(pdf_text(garbage, Duration::from_secs(30)).await.is_err());
    }

    /// `pipelines/sample.pdf`, the PDF the README tour and `cargo xtask demo`
    /// attach, is `make_pdf(SAMPLE)`; `CIM_WRITE_SAMPLE_PDF=1` rewrites it.
    #[tokio::test]
    async fn the_sample_pdf_is_made_here_and_its_text_extracts() {
        const SAMPLE: [&str; 2] = ["Quarterly report: revenue grew by twelve percent.", "Costs stayed flat."];
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/sample.pdf");
        let made = make_pdf(&SAMPLE);
        if std::env::var_os("CIM_WRITE_SAMPLE_PDF").is_some() {
            std::fs::write(&path, &made).unwrap();
        }
        let stored = std::fs::read(&path).unwrap();
        assert_eq!(stored, made, "{} is stale: rerun with CIM_WRITE_SAMPLE_PDF=1", path.display());
        let pages = pdf_text(stored, Duration::from_secs(30)).await.unwrap();
        assert!(pages[0].contains(SAMPLE[0]) && pages[1].contains(SAMPLE[1]), "{pages:?}");
    }

    #[test]
    fn reads_image_headers() {
        const PNG_3X2: [u8; 33] = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 3, 0, 0, 0,
            2, 8, 2, 0, 0, 0, 0x12, 0x16, 0xF1, 0x4D,
        ];
        let facts = image_facts(&PNG_3X2).unwrap();
        assert_eq!((facts["width"].clone(), facts["height"].clone()), (json!(3), json!(2)));
        assert!(image_facts(b"hello").is_err());
    }
}

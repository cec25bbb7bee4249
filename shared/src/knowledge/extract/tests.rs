use super::detect::extension;
use super::docx::docx_heading_level;
use super::entities::decode_entities;
use super::html::html_to_text;
use super::*;
use std::io::{Cursor, Write};

fn zip_bytes(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, content) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const DOCUMENT_XML: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Getting Started</w:t></w:r></w:p>
<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t xml:space="preserve">Install the </w:t></w:r><w:r><w:t>app &amp; sign in&#33;</w:t></w:r></w:p>
<w:p><w:r><w:t>Name</w:t><w:tab/><w:t>Value</w:t><w:br/><w:t>Next line</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Billing</w:t></w:r></w:p>
<w:sectPr/></w:body></w:document>"#;

/// A minimal PDF: one page per entry, each showing its text in Helvetica (a standard-14
/// Type1 font, so no widths or embedded font are needed).
fn pdf_bytes(pages: &[&str]) -> Vec<u8> {
    let page_count = pages.len();
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {page_count} >>",
            (0..page_count).map(|i| format!("{} 0 R", 4 + 2 * i)).collect::<Vec<_>>().join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    for (i, text) in pages.iter().enumerate() {
        let content = format!("BT /F1 24 Tf 72 700 Td ({text}) Tj ET");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

#[test]
fn plain_text_normalises_newlines() {
    let doc = extract(b"Hello\r\nWorld\r\n", "notes.txt", None).unwrap();
    assert_eq!(doc.kind, DocKind::Text);
    assert_eq!(doc.text, "Hello\nWorld\n");
    assert_eq!(doc.word_count(), 2);
    assert_eq!(doc.page_count(), None);
    assert!(!doc.is_markdown_like());
}

#[test]
fn text_with_bom_and_utf16() {
    let doc = extract(b"\xEF\xBB\xBFcaf\xC3\xA9", "a.txt", None).unwrap();
    assert_eq!(doc.text, "café");

    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "Hi there".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let doc = extract(&utf16, "a.txt", None).unwrap();
    assert_eq!(doc.text, "Hi there");

    let mut utf16be = vec![0xFE, 0xFF];
    for unit in "Big end".encode_utf16() {
        utf16be.extend_from_slice(&unit.to_be_bytes());
    }
    assert_eq!(extract(&utf16be, "b", None).unwrap().text, "Big end");
}

#[test]
fn whitespace_only_is_empty() {
    assert!(matches!(extract(b"  \n\t\n", "empty.txt", None), Err(ExtractError::Empty)));
    assert!(matches!(
        extract(b"<html><head><title></title></head><body> </body></html>", "x.html", None),
        Err(ExtractError::Empty)
    ));
}

#[test]
fn markdown_as_is() {
    let md = "# Title\n\nSome *text*.\n\n## Part\n\nMore.";
    let doc = extract(md.as_bytes(), "README.md", None).unwrap();
    assert_eq!(doc.kind, DocKind::Markdown);
    assert_eq!(doc.text, md);
    assert!(doc.is_markdown_like());
}

#[test]
fn html_is_converted() {
    let html = r#"<!DOCTYPE html>
<html><head><title>Ignored Title</title><style>body { color: red }</style>
<script>var x = "<p>no</p>";</script></head>
<body><h1>Main &amp; Heading</h1>
<p>Tom &lt;3 Jerry&nbsp;&#39;s &#x41;BC   and
   more</p><!-- hidden comment -->
<noscript>Enable JS</noscript>
<ul><li>One</li><li>Two</li></ul>
<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>
<p>Line<br>break</p>
</body></html>"#;
    let doc = extract(html.as_bytes(), "page.html", None).unwrap();
    assert_eq!(doc.kind, DocKind::Html);
    assert_eq!(
        doc.text,
        "# Main & Heading\n\nTom <3 Jerry 's ABC and more\n\n- One\n- Two\n\nA | B\n1 | 2\n\nLine\nbreak"
    );
    assert!(!doc.text.contains("color"));
    assert!(!doc.text.contains("var x"));
    assert!(!doc.text.contains("hidden"));
    assert!(!doc.text.contains("Enable JS"));
    assert!(!doc.text.contains("Ignored Title"));
}

#[test]
fn html_title_used_without_h1() {
    let html = "<html><head><title>FAQ &amp; Help</title></head><body><h2>Refunds</h2><div>Within 30 days.</div></body></html>";
    let doc = extract(html.as_bytes(), "faq.htm", None).unwrap();
    assert_eq!(doc.text, "# FAQ & Help\n\n## Refunds\n\nWithin 30 days.");
}

#[test]
fn html_pre_keeps_lines() {
    let html = "<p>Run:</p><pre>cargo build\n  --release</pre><p>Done</p>";
    assert_eq!(html_to_text(html), "Run:\n\ncargo build\n  --release\n\nDone");
}

#[test]
fn malformed_html_does_not_panic() {
    let inputs = [
        "<",
        "</",
        "<!--",
        "<!-- never closed",
        "<p>unclosed <b attr='x>text",
        "<a href=\"foo>bar</a> tail",
        "&#xZZZ; &#99999999999; &#0; &; &unknown; & amp",
        "<script>never closed",
        "<title>t",
        "<h1></h1><li></li><td></td>",
        "<<>>< p>text</ p>",
        "é<ü>日本語</ü>&#x1F600;",
        "<table><td>a</td><td></td><td>c</td></table>",
        "<pre>\n\n\n</pre>x",
    ];
    for input in inputs {
        let _ = html_to_text(input);
    }
    assert_eq!(decode_entities("&#xZZZ; &#99999999999; &unknown; & amp"), "&#xZZZ; \u{FFFD} &unknown; & amp");
    assert_eq!(html_to_text("<table><tr><td>a</td><td></td><td>c</td></tr></table>"), "a | | c");
    assert_eq!(html_to_text("1 < 2 &amp;&amp; 3 > 2"), "1 < 2 && 3 > 2");
}

#[test]
fn html_sniffed_without_extension() {
    let html = b"  \n<!doctype HTML><html><body><p>Hi</p></body></html>";
    assert_eq!(detect(html, "upload", None).unwrap(), DocKind::Html);
    assert_eq!(detect(b"<HTML><body>x</body></HTML>", "page.aspx", None).unwrap(), DocKind::Html);
    // A telling extension wins over sniffing.
    assert_eq!(detect(html, "notes.txt", None).unwrap(), DocKind::Text);
    let doc = extract(html, "upload", None).unwrap();
    assert_eq!(doc.text, "Hi");
}

#[test]
fn mime_fallback() {
    assert_eq!(detect(b"a,b\n1,2", "data", Some("text/csv; charset=utf-8")).unwrap(), DocKind::Csv);
    assert_eq!(detect(b"{\"a\":1}", "data", Some("application/json")).unwrap(), DocKind::Json);
    assert_eq!(detect(b"# T", "data", Some("text/markdown")).unwrap(), DocKind::Markdown);
    assert_eq!(detect(b"<p>x</p>", "data", Some("TEXT/HTML")).unwrap(), DocKind::Html);
    assert_eq!(detect(b"plain", "data", Some("application/octet-stream")).unwrap(), DocKind::Text);
    // Extension beats mime.
    assert_eq!(detect(b"a,b", "x.txt", Some("text/csv")).unwrap(), DocKind::Text);
}

#[test]
fn docx_paragraphs_and_headings() {
    let bytes = zip_bytes(&[("[Content_Types].xml", CONTENT_TYPES), ("word/document.xml", DOCUMENT_XML)]);
    assert_eq!(detect(&bytes, "guide.docx", None).unwrap(), DocKind::Docx);
    // Content wins over a misleading name.
    assert_eq!(detect(&bytes, "guide.bin", None).unwrap(), DocKind::Docx);
    let doc = extract(&bytes, "guide.docx", None).unwrap();
    assert_eq!(doc.kind, DocKind::Docx);
    assert_eq!(doc.text, "# Getting Started\nInstall the app & sign in!\nName\tValue\nNext line\n## Billing");
}

#[test]
fn docx_heading_styles() {
    assert_eq!(docx_heading_level("Heading1"), Some(1));
    assert_eq!(docx_heading_level("heading 3"), Some(3));
    assert_eq!(docx_heading_level("Heading9"), Some(6));
    assert_eq!(docx_heading_level("Title"), Some(1));
    assert_eq!(docx_heading_level("Heading1Char"), None);
    assert_eq!(docx_heading_level("Normal"), None);
}

#[test]
fn csv_rows_become_lines() {
    let csv = "Name,Age,City\r\nAlice,30,Paris\r\nBob,,\"New\nYork\"\r\nCarol,41,Rome,extra\n";
    let doc = extract(csv.as_bytes(), "people.csv", None).unwrap();
    assert_eq!(doc.kind, DocKind::Csv);
    assert_eq!(
        doc.text,
        "Name: Alice; Age: 30; City: Paris\nName: Bob; City: New York\nName: Carol; Age: 41; City: Rome; extra"
    );
    let semicolons = extract(b"Product;Price\nTea;3,50\n", "prices.csv", None).unwrap();
    assert_eq!(semicolons.text, "Product: Tea; Price: 3,50");
}

#[test]
fn json_is_flattened() {
    let json =
        r#"{"name": "Widget", "price": 9.5, "tags": ["a", "b"], "dims": {"w": 1, "h": 2}, "none": null, "ok": true}"#;
    let doc = extract(json.as_bytes(), "item.json", None).unwrap();
    assert_eq!(doc.kind, DocKind::Json);
    let lines: Vec<&str> = doc.text.lines().collect();
    for expected in ["name: Widget", "price: 9.5", "tags[0]: a", "tags[1]: b", "dims.w: 1", "dims.h: 2", "ok: true"] {
        assert!(lines.contains(&expected), "missing {expected:?} in {lines:?}");
    }
    assert_eq!(lines.len(), 7);

    let faq = r#"[{"q": "Hi?", "a": "Hello"}, {"q": "Bye?", "a": "Later"}]"#;
    let doc = extract(faq.as_bytes(), "faq.json", None).unwrap();
    let blocks: Vec<&str> = doc.text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].lines().any(|l| l == "q: Hi?"));
    assert!(blocks[1].lines().any(|l| l == "a: Later"));

    let mut deep = String::from("1");
    for _ in 0..15 {
        deep = format!("{{\"k\": {deep}}}");
    }
    let doc = extract(deep.as_bytes(), "deep.json", None).unwrap();
    assert_eq!(doc.text.lines().count(), 1);
    assert!(doc.text.starts_with("k.k.k.k.k.k.k.k.k.k: {"));

    assert!(matches!(extract(b"{not json", "x.json", None), Err(ExtractError::Corrupt { kind: "json", .. })));
}

#[test]
fn pdf_text_and_pages() {
    let bytes = pdf_bytes(&["Hello PDF world"]);
    assert_eq!(detect(&bytes, "doc.pdf", None).unwrap(), DocKind::Pdf);
    let doc = extract(&bytes, "doc.pdf", None).unwrap();
    assert_eq!(doc.kind, DocKind::Pdf);
    assert_eq!(doc.text, "Hello PDF world");
    assert_eq!(doc.page_starts, vec![0]);
    assert_eq!(doc.page_count(), Some(1));

    let bytes = pdf_bytes(&["First page text", "Second page text"]);
    let doc = extract(&bytes, "two.pdf", None).unwrap();
    assert_eq!(doc.page_count(), Some(2));
    assert!(doc.text.starts_with("First page text"));
    assert!(doc.text[doc.page_starts[1]..].starts_with("Second page text"));
}

#[test]
fn broken_pdf_is_corrupt() {
    let result = extract(b"%PDF-1.4\nthis is not really a pdf", "x.pdf", None);
    assert!(matches!(result, Err(ExtractError::Corrupt { kind: "pdf", .. })), "{result:?}");
}

#[test]
fn detection_errors() {
    assert!(matches!(detect(b"just some text", "report.pdf", None), Err(ExtractError::Corrupt { kind: "pdf", .. })));
    assert!(matches!(detect(b"just some text", "report.docx", None), Err(ExtractError::Corrupt { kind: "docx", .. })));

    let binary: Vec<u8> = (0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert!(matches!(detect(&binary, "blob.bin", None), Err(ExtractError::Unsupported(_))));
    assert!(matches!(detect(&[0xC3, 0x28, 0xA0, 0xA1, 0xFF], "x", None), Err(ExtractError::Unsupported(_))));
    assert!(matches!(detect(b"nul\0inside", "x.txt", None), Err(ExtractError::Unsupported(_))));

    let zip = zip_bytes(&[("hello.txt", "hello")]);
    assert!(matches!(detect(&zip, "archive.zip", None), Err(ExtractError::Unsupported(_))));
    assert!(matches!(detect(&zip, "fake.docx", None), Err(ExtractError::Corrupt { kind: "docx", .. })));
}

#[test]
fn extension_parsing() {
    assert_eq!(extension("dir.v2/File.PDF").as_deref(), Some("pdf"));
    assert_eq!(extension("C:\\x\\notes.Md").as_deref(), Some("md"));
    assert_eq!(extension("Makefile"), None);
    assert_eq!(extension("dir.d/Makefile"), None);
    assert_eq!(extension("trailing."), None);
}

//! Small hand-written pages: one behaviour per test, no saved fixtures needed.

use anchor_extract::{Outlet, extract};
use url::Url;

fn url(s: &str) -> Url {
    Url::parse(s).expect("valid test url")
}

#[test]
fn generic_figure_with_srcset_and_credit() {
    let html = r#"<html><head><meta property="og:image" content="https://cdn.example.com/a-1024.jpg"></head>
      <body><article>
      <figure><img src="/a.jpg" srcset="/a-320.jpg 320w, https://cdn.example.com/a-1024.jpg 1024w" alt="Bridge">
        <figcaption>The bridge opens. (AP Photo/Jane Doe)</figcaption></figure>
      <figure><img data-src="b.jpg" src="data:image/gif;base64,R0lGOD"><figcaption>Second <span class="credit">Photo: John Roe</span></figcaption></figure>
      </article></body></html>"#;
    let ex = extract(None, &url("https://www.example.com/news/story"), html);
    assert_eq!(ex.adapter, "generic");
    assert_eq!(ex.images.len(), 2);
    let a = &ex.images[0];
    assert_eq!(a.image_url, "https://cdn.example.com/a-1024.jpg");
    assert_eq!(a.caption, "The bridge opens.");
    assert_eq!(a.credit.as_deref(), Some("AP Photo/Jane Doe"));
    assert_eq!(a.alt.as_deref(), Some("Bridge"));
    assert!(a.is_lead, "matches og:image");
    let b = &ex.images[1];
    assert_eq!(b.image_url, "https://www.example.com/news/b.jpg");
    assert_eq!(b.caption, "Second");
    assert_eq!(b.credit.as_deref(), Some("John Roe"));
    assert_eq!((b.position, b.is_lead), (1, false));
}

#[test]
fn picture_sources_give_the_largest_rendition() {
    let html = r#"<figure><picture>
        <source media="(min-width: 980px)" srcset="https://i.example/p.jpg?w=620 620w, https://i.example/p.jpg?w=1240 1240w">
        <source media="(min-width: 0px)" srcset="https://i.example/p.jpg?w=445 445w">
        <img src="https://i.example/p.jpg?w=300" alt="P"></picture>
        <figcaption>Picture caption Photograph: A Person/Agency</figcaption></figure>"#;
    let ex = extract(None, &url("https://example.org/"), html);
    assert_eq!(ex.images.len(), 1);
    assert_eq!(ex.images[0].image_url, "https://i.example/p.jpg?w=1240");
    assert_eq!(ex.images[0].caption, "Picture caption");
    assert_eq!(ex.images[0].credit.as_deref(), Some("A Person/Agency"));
}

#[test]
fn furniture_is_left_out() {
    let html = r#"<body>
      <header><figure><img src="/logo.png"><figcaption>Site</figcaption></figure></header>
      <aside class="related-stories"><figure><img src="/t.jpg"><figcaption>Related story</figcaption></figure></aside>
      <figure><img src="/static/avatar-jane.jpg"><figcaption>Jane Doe</figcaption></figure>
      <figure><img src="/icons/share.svg"><figcaption>Share</figcaption></figure>
      <figure><img src="/photo.jpg"><figcaption>A real photo</figcaption></figure>
      <figure><img src="/nocaption.jpg"><figcaption> </figcaption></figure>
    </body>"#;
    let ex = extract(None, &url("https://example.org/a"), html);
    let captions: Vec<&str> = ex.images.iter().map(|i| i.caption.as_str()).collect();
    assert_eq!(captions, vec!["A real photo"]);
}

#[test]
fn json_ld_images_when_no_figures() {
    let html = r#"<script type="application/ld+json">
      {"@context":"https://schema.org","@type":"NewsArticle","headline":"Head","datePublished":"2020-01-02 03:04:05+0000",
       "author":[{"@type":"Person","name":"Ann Author"},{"@type":"Person","name":"Ann Author"}],
       "articleSection":"World","url":"https://example.org/story",
       "image":{"@type":"ImageObject","url":"/lead.jpg","caption":"Lead caption","creditText":"Agency"}}
    </script>"#;
    let ex = extract(None, &url("file:///tmp/page.html"), html);
    assert_eq!(ex.article.headline.as_deref(), Some("Head"));
    assert_eq!(
        ex.article.published_at.as_deref(),
        Some("2020-01-02T03:04:05+00:00")
    );
    assert_eq!(ex.article.authors, vec!["Ann Author".to_string()]);
    assert_eq!(ex.article.section.as_deref(), Some("World"));
    assert_eq!(ex.images.len(), 1);
    // A local page resolves relative URLs against its canonical URL.
    assert_eq!(ex.images[0].image_url, "https://example.org/lead.jpg");
    assert_eq!(ex.images[0].credit.as_deref(), Some("Agency"));
    assert!(ex.images[0].is_lead);
}

#[test]
fn outlet_adapter_falls_back_to_generic_with_a_note() {
    let html = r#"<figure><img src="/x.jpg"><figcaption>Only a figure</figcaption></figure>"#;
    let ex = extract(
        Some(Outlet::WashingtonPost),
        &url("https://www.washingtonpost.com/x"),
        html,
    );
    // The Arc layout handles plain figures; a page with no known marks at all falls back.
    assert_eq!(ex.images.len(), 1);
    let ex = extract(
        Some(Outlet::Bbc),
        &url("https://www.bbc.co.uk/news/x"),
        html,
    );
    assert_eq!(ex.adapter, "generic");
    assert!(
        ex.notes.iter().any(|n| n.contains("fell back to generic")),
        "{:?}",
        ex.notes
    );
    assert_eq!(ex.images[0].caption, "Only a figure");
}

#[test]
fn outlet_detected_from_host() {
    let html = r#"<figure class="media-landscape"><span class="image-and-copyright-container">
      <div class="js-delayed-image-load" data-src="https://ichef.bbci.co.uk/news/320/cpsprodpb/1/a.jpg" data-alt="Alt"></div>
      <span class="story-image-copyright">EPA</span></span>
      <figcaption class="media-caption"><span class="off-screen">Image caption</span>
      <span class="media-caption__text">Something happened</span></figcaption></figure>"#;
    let ex = extract(None, &url("https://www.bbc.co.uk/news/world-1"), html);
    assert_eq!(ex.adapter, "bbc/2015");
    assert_eq!(ex.images.len(), 1);
    let img = &ex.images[0];
    assert_eq!(img.caption, "Something happened");
    assert_eq!(img.credit.as_deref(), Some("EPA"));
    assert_eq!(img.alt.as_deref(), Some("Alt"));
    assert_eq!(
        img.image_url,
        "https://ichef.bbci.co.uk/news/976/cpsprodpb/1/a.jpg"
    );
}

#[test]
fn gallery_data_attributes() {
    let html = r#"<div class="wp-volt-gal-slide wp-volt-gal-photo" data-image="https://img.example/1.jpg"
        data-caption="First slide." data-credit="Jane Doe/AP"></div>
      <div class="wp-volt-gal-slide wp-volt-gal-photo" data-image="https://img.example/2.jpg"
        data-caption="" data-credit="Jane Doe/AP"></div>"#;
    let ex = extract(
        Some(Outlet::WashingtonPost),
        &url("https://www.washingtonpost.com/world/x"),
        html,
    );
    assert_eq!(ex.adapter, "washingtonpost/gallery");
    assert_eq!(ex.images.len(), 1, "the slide without caption is dropped");
    assert_eq!(ex.images[0].caption, "First slide.");
    assert_eq!(ex.images[0].credit.as_deref(), Some("Jane Doe/AP"));
}

#[test]
fn malformed_html_does_not_panic() {
    let pages = [
        "",
        "<",
        "<figure><figcaption>",
        "<figure><img srcset=\", , 12w\"><figcaption>(</figcaption>",
        "<script type=\"application/ld+json\">{\"@type\":\"NewsArticle\",\"image\":[[[[</script>",
        "<figure><img src=\"http://[::1\"><figcaption>Bad URL</figcaption></figure>",
        "<figure><img src=\"javascript:alert(1)\"><figcaption>Script URL</figcaption></figure>",
        "\u{0}\u{feff}<figure><img src=/a.jpg><figcaption>Credit…</figcaption></figure>",
    ];
    for html in pages {
        for outlet in Outlet::ALL.iter().copied().map(Some).chain([None]) {
            let ex = extract(outlet, &url("https://example.com/"), html);
            for img in &ex.images {
                assert!(img.image_url.starts_with("http"), "{html:?}: {img:?}");
                assert!(!img.caption.is_empty(), "{html:?}: {img:?}");
            }
        }
    }
}

#[test]
fn json_line_has_the_documented_keys() {
    let img = anchor_extract::CaptionedImage {
        image_url: "https://e.x/a.jpg".into(),
        caption: "Cap \"quoted\"".into(),
        credit: None,
        alt: Some("Alt".into()),
        position: 3,
        is_lead: false,
    };
    let line = anchor_extract::to_json_line(&img);
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(v["image_url"], "https://e.x/a.jpg");
    assert_eq!(v["caption"], "Cap \"quoted\"");
    assert!(v["credit"].is_null());
    assert_eq!(v["alt"], "Alt");
    assert_eq!(v["position"], 3);
    assert_eq!(v["is_lead"], false);
}

#[test]
fn lazy_figure_image_read_from_noscript() {
    let html = r#"<html><body><article>
      <figure><div class="placeholder"></div>
        <noscript><img src="https://static.example.com/p/x-articleLarge.jpg" srcset="https://static.example.com/p/x-articleLarge.jpg 600w, https://static.example.com/p/x-superJumbo.jpg 2048w" alt="A harbour"></noscript>
        <figcaption>Boats in the harbour. <span class="credit">Jane Doe for The Example</span></figcaption></figure>
      </article></body></html>"#;
    let ex = extract(None, &url("https://www.example.com/2019/story.html"), html);
    assert_eq!(ex.images.len(), 1, "{:?}", ex);
    assert_eq!(
        ex.images[0].image_url,
        "https://static.example.com/p/x-superJumbo.jpg"
    );
    assert_eq!(ex.images[0].caption, "Boats in the harbour.");
    assert_eq!(
        ex.images[0].credit.as_deref(),
        Some("Jane Doe for The Example")
    );
    assert_eq!(ex.images[0].alt.as_deref(), Some("A harbour"));
}

#[test]
fn caption_classed_blocks_without_figure() {
    let html = r#"<html><body><div id="story">
      <div class="image"><img src="/img/a_304.jpg" alt="Mayor"><p class="caption">The mayor at the meeting.</p></div>
      <p>Text.</p>
      <div class="image"><img src="/img/b_304.jpg"><p class="caption">The town hall.</p></div>
      <aside class="related"><div><img src="/img/c.jpg"><p class="caption">Another story</p></div></aside>
      </div></body></html>"#;
    let ex = extract(None, &url("https://news.example.org/a/1.html"), html);
    let caps: Vec<&str> = ex.images.iter().map(|i| i.caption.as_str()).collect();
    assert_eq!(caps, ["The mayor at the meeting.", "The town hall."]);
    assert_eq!(
        ex.images[0].image_url,
        "https://news.example.org/img/a_304.jpg"
    );
}

#[test]
fn original_jpeg_preferred_over_webp_transcode() {
    let html = r#"<html><body><article><figure>
      <img src="https://ichef.example/news/480/p/x.jpg" srcset="https://ichef.example/news/480/p/x.jpg.webp 480w, https://ichef.example/news/976/p/x.jpg.webp 976w">
      <figcaption>A caption</figcaption></figure></article></body></html>"#;
    let ex = extract(None, &url("https://www.example.com/news/1"), html);
    assert_eq!(
        ex.images[0].image_url,
        "https://ichef.example/news/976/p/x.jpg"
    );
}

#[test]
fn caption_in_img_attributes_with_linked_original() {
    let html = r#"<body><p>Text.<a href="http://i.example/p/2010/x-large.jpg" target="_blank"><img
        src="http://i.example/p/2010/x-inset.jpg" alt="" cutline="A quarterback practises."
        credit="By Jane Doe, Agency"></a></p>
        <p><img src="http://i.example/p/2010/y.jpg" data-caption="Second photo."></p></body>"#;
    let ex = extract(None, &url("https://example.org/story"), html);
    assert_eq!(ex.images.len(), 2);
    assert_eq!(
        ex.images[0].image_url,
        "http://i.example/p/2010/x-large.jpg"
    );
    assert_eq!(ex.images[0].caption, "A quarterback practises.");
    assert_eq!(ex.images[0].credit.as_deref(), Some("Jane Doe, Agency"));
    assert_eq!(ex.images[1].image_url, "http://i.example/p/2010/y.jpg");
    assert_eq!(ex.images[1].caption, "Second photo.");
    assert_eq!(ex.images[1].credit, None);
}

#[test]
fn microdata_image_object_with_bare_paragraph_caption() {
    // A first photo found by its cutline class, a second only as microdata: both come back,
    // in document order, with the credit taken from the credit element.
    let html = r#"<body><div class="story">
      <aside itemscope itemtype="http://schema.org/ImageObject"><img itemprop="url" src="https://c.example/a.jpg">
        <p><span class="cutline">First caption.</span><span class="credit">(Photo: A. Person, AP)</span></p></aside>
      <p>Body text.</p>
      <aside itemprop="associatedMedia" itemscope itemtype="http://schema.org/ImageObject" class="wide">
        <img itemprop="url" src="https://c.example/b.jpg" alt="B"><meta itemprop="name" content="B">
        <p>The home where he rented a room.<meta itemprop="copyrightHolder" content="J. Moore/Getty Images" />
        <span class="credit">(Photo: J. Moore/Getty Images)</span></p></aside>
      <aside itemscope itemtype="http://schema.org/ImageObject"><img src="https://c.example/c.jpg"></aside>
    </div></body>"#;
    for outlet in [None, Some(Outlet::UsaToday)] {
        let ex = extract(outlet, &url("https://www.usatoday.com/story/x/"), html);
        let got: Vec<(&str, &str, Option<&str>)> = ex
            .images
            .iter()
            .map(|i| {
                (
                    i.image_url.as_str(),
                    i.caption.as_str(),
                    i.credit.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "https://c.example/a.jpg",
                    "First caption.",
                    Some("A. Person, AP")
                ),
                (
                    "https://c.example/b.jpg",
                    "The home where he rented a room.",
                    Some("J. Moore/Getty Images")
                ),
            ],
            "{outlet:?}"
        );
    }
}

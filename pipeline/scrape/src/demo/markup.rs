//! Article pages in each outlet's real markup (modern layouts, learned from
//! the saved pages in `tests/fixtures/outlets`): Guardian DCR figures with
//! `picture`/`source` and a "Photograph:" credit, BBC's styled-components
//! figures with the credit in a span over the image, Washington Post captions
//! ending in a parenthesised credit, NYT figures with `itemProp` caption and
//! `copyrightHolder`, and USA Today's `image-caption`/`image-credit` blocks.

use anchor_core::Outlet;

use super::site::{ArticlePlan, ImagePlan};

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The full HTML page of `a`.
pub fn article_page(a: &ArticlePlan) -> String {
    let canonical = esc(a.canonical.as_str());
    let headline = esc(&a.headline);
    let author = esc(&a.authors.join(", "));
    let lead_url = a
        .images
        .first()
        .map(|i| esc(i.url.as_str()))
        .unwrap_or_default();
    let ld = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": a.headline,
        "url": a.canonical.as_str(),
        "datePublished": a.published_at,
        "articleSection": a.section,
        "author": a.authors.iter().map(|n| serde_json::json!({"@type": "Person", "name": n})).collect::<Vec<_>>(),
    });
    let mut body = String::new();
    for (k, img) in a.images.iter().enumerate() {
        body.push_str(&figure(a.outlet, img, k == 0));
        if let Some(p) = a.paragraphs.get(k) {
            body.push_str(&format!("<p>{}</p>\n", esc(p)));
        }
    }
    let byline = match a.outlet {
        Outlet::UsaToday => format!(
            "<div class=\"byline-section\"><div class=\"attribution\"><span class=\"author\">{author}</span><span class=\"publication\">USA TODAY</span></div></div>"
        ),
        _ => {
            format!("<div class=\"byline\" data-qa=\"byline\"><a rel=\"author\">{author}</a></div>")
        }
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{headline}</title>\
<link rel=\"canonical\" href=\"{canonical}\">\
<meta property=\"og:url\" content=\"{canonical}\"><meta property=\"og:title\" content=\"{headline}\">\
<meta property=\"og:image\" content=\"{lead_url}\">\
<meta property=\"article:published_time\" content=\"{}\"><meta property=\"article:section\" content=\"{}\">\
<meta name=\"author\" content=\"{author}\">\
<script type=\"application/ld+json\">{}</script></head>\
<body><main><article><h1>{headline}</h1>{byline}\n{body}</article></main></body></html>\n",
        esc(&a.published_at),
        esc(a.section),
        ld.to_string().replace("</", "<\\/"),
    )
}

const GUARDIAN_CAMERA: &str = "<svg width=\"18\" height=\"13\" viewBox=\"0 0 18 13\"><path d=\"M18 3.5v8l-1.5 1.5h-15l-1.5-1.5v-8l1.5-1.5h3.5l2-2h4l2 2h3.5l1.5 1.5z\"/></svg>";

fn figure(outlet: Outlet, img: &ImagePlan, lead: bool) -> String {
    let url = esc(img.url.as_str());
    let alt = esc(&img.alt);
    let caption = esc(&img.caption);
    let credit = esc(&img.credit);
    match outlet {
        Outlet::Guardian => format!(
            "<figure id=\"img-{pos}\"{role} class=\"{cls}\"><div class=\"dcr-1t8m8f2\"><picture class=\"dcr-evn1e9\">\
<source srcSet=\"{url}\" media=\"(min-width: 980px)\"/><source srcSet=\"{url}\" media=\"(min-width: 660px)\"/>\
<img alt=\"{alt}\" src=\"{url}\" width=\"445\" height=\"267\" loading=\"{loading}\" class=\"dcr-4zleql\"/></picture></div>\
<figcaption class=\"dcr-b1sbj2\"><span class=\"dcr-17eagbs\">{GUARDIAN_CAMERA}</span><span class=\"dcr-1y4fm6e\">{caption}</span> Photograph: {credit}</figcaption></figure>\n",
            pos = img.url.path().len(),
            // DCR marks inline (non-lead) image blocks with spacefinder
            // attributes; the main media figure has none.
            role = if lead {
                ""
            } else {
                " data-spacefinder-role=\"inline\" data-spacefinder-type=\"model.dotcomrendering.pageElements.ImageBlockElement\""
            },
            cls = if lead { "dcr-142siv7" } else { "dcr-173mewl" },
            loading = if lead { "eager" } else { "lazy" },
        ),
        Outlet::Bbc => format!(
            "<figure class=\"sc-cd6075cf-0 laOREU\"><div class=\"sc-82b3c53b-0 gmICnp\"><div data-testid=\"{testid}\" class=\"sc-5340b511-1 cMIbKV\">\
<img sizes=\"(min-width: 1280px) 50vw, 96vw\" srcSet=\"{url} 800w\" src=\"{url}\" loading=\"lazy\" alt=\"{alt}\" class=\"sc-5340b511-0 hLdNfA\"/>\
<span class=\"sc-5340b511-2 jVqbAn\">{credit}</span></div>\
<figcaption class=\"sc-69115734-0 jsSfKy\">{caption}</figcaption></div></figure>\n",
            testid = if lead { "hero-image" } else { "image" },
        ),
        Outlet::WashingtonPost => format!(
            "<figure class=\"center mb-md ml-neg-gutter mr-neg-gutter overflow-hidden relative hide-for-print\">\
<div class=\"w-100 mw-100 h-auto\"><img src=\"{url}\" alt=\"{alt}\" class=\"w-100 mw-100 h-auto\" width=\"600\" height=\"400\"/></div>\
<figcaption class=\"left ml-gutter mr-gutter gray-dark font--subhead font-xxxs mt-xs mb-sm\">{caption} ({credit})</figcaption></figure>\n"
        ),
        Outlet::NyTimes => format!(
            "<figure class=\"{cls} css-1ox9jel\" aria-label=\"media\" role=\"group\" itemscope=\"\" itemProp=\"associatedMedia\" itemID=\"{url}\" itemType=\"http://schema.org/ImageObject\">\
<div class=\"css-bsn42l\"><picture><img alt=\"{alt}\" class=\"css-11cwn6f\" src=\"{url}\" srcSet=\"{url} 600w\" sizes=\"100vw\" decoding=\"async\" itemProp=\"url\" itemID=\"{url}\"/></picture></div>\
<figcaption itemProp=\"caption description\" class=\"css-17ai7jg e18f7pbr0\"><span aria-hidden=\"true\" class=\"css-16f3y1r e13ogyst0\">{caption}</span>\
<span itemProp=\"copyrightHolder\" class=\"css-cnj6d5 e1z0qqy90\"><span class=\"css-1ly73wi e1tej78p0\">Credit...</span><span><span>{credit}</span></span></span></figcaption></figure>\n",
            cls = if lead {
                "sizeLarge layoutHorizontal"
            } else {
                "sizeMedium layoutHorizontal"
            },
        ),
        Outlet::UsaToday => format!(
            "<div class=\"asset asset-image\"><div class=\"image-image\"><img src=\"{url}\" alt=\"{alt}\"></div>\
<div class=\"image-meta\"><div class=\"image-caption\">{caption}</div><div class=\"image-credit\">{credit}</div></div></div>\n"
        ),
    }
}

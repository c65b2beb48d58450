//! The `non_english` rule measured on real captions.
//!
//! English: every caption of the saved outlet pages (`pipeline/extract/tests/expected`, the
//! extract oracle of `tests/fixtures/outlets`) and every caption the demo site can generate
//! (its scene captions and all person × action × place templates, read from the demo's
//! source). Non-English: the demo's French caption plus short news captions in six other
//! languages. Prints how many of each are dropped and the highest confidence of a wrong
//! guess on English text, and holds the rule to: no English caption dropped, every
//! non-Latin-script (Chinese) outlet caption and every non-English caption dropped.

use std::path::{Path, PathBuf};

use anchor_filters::DropReason;
use anchor_filters::caption::{CaptionRules, NON_ENGLISH_MIN_CONFIDENCE, clean};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn outlet_captions() -> Vec<String> {
    let dir = repo_root().join("pipeline/extract/tests/expected");
    let mut files = Vec::new();
    for outlet in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let outlet = outlet.unwrap_or_else(|e| panic!("{e}")).path();
        for f in std::fs::read_dir(&outlet).unwrap_or_else(|e| panic!("{e}")) {
            files.push(f.unwrap_or_else(|e| panic!("{e}")).path());
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for img in v["images"].as_array().into_iter().flatten() {
            if let Some(c) = img["caption"].as_str().filter(|c| !c.is_empty()) {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// The string literals of `const NAME: &[&str] = &[ ... ];` in the demo site's source.
fn demo_list(src: &str, name: &str) -> Vec<String> {
    let start = src
        .find(&format!("const {name}: &[&str] = &["))
        .unwrap_or_else(|| panic!("demo site has no {name}"));
    let body = &src[start..];
    let body = &body[body.find("&[").unwrap_or(0) + 2..body.find("];").unwrap_or(body.len())];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn demo_captions() -> (Vec<String>, String) {
    let path = repo_root().join("pipeline/scrape/src/demo/site.rs");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut english = demo_list(&src, "SCENES");
    let (people, actions, places) = (
        demo_list(&src, "PEOPLE"),
        demo_list(&src, "ACTIONS"),
        demo_list(&src, "PLACES"),
    );
    // The demo's template: "{person} {action} {place} on {YYYY-MM-DD}."
    for (i, p) in people.iter().enumerate() {
        for (j, a) in actions.iter().enumerate() {
            for (k, l) in places.iter().enumerate() {
                english.push(format!(
                    "{p} {a} {l} on 20{:02}-{:02}-{:02}.",
                    15 + (i + k) % 11,
                    1 + (i + j) % 12,
                    1 + (j * 3 + k) % 28
                ));
            }
        }
    }
    let french_at = src
        .find("CaptionFault::NonEnglish => {")
        .unwrap_or_else(|| panic!("demo site has no French caption"));
    let french = src[french_at..]
        .split('"')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(english.len() > 1000 && !french.is_empty());
    (english, french)
}

const NON_ENGLISH: &[&str] = &[
    "Le président de la République lors de sa visite à Marseille.",
    "Des pompiers luttent contre un incendie près de Bordeaux.",
    "Emmanuel Macron à l'Élysée, mardi.",
    "Une file d'attente devant un bureau de vote à Paris.",
    "Bundeskanzler Olaf Scholz spricht am Montag im Bundestag in Berlin.",
    "Demonstranten ziehen durch die Innenstadt von Hamburg.",
    "Feuerwehrleute löschen einen Brand in einer Lagerhalle.",
    "Die Ministerin bei einer Pressekonferenz in München.",
    "Ein Zug steht nach dem Streik im leeren Bahnhof.",
    "El presidente del Gobierno, Pedro Sánchez, durante su comparecencia en el Congreso.",
    "Miles de personas se manifiestan en el centro de Madrid.",
    "Los bomberos trabajan para apagar el incendio forestal en Valencia.",
    "Un agricultor revisa su cosecha afectada por la sequía.",
    "La selección celebra el gol en el estadio.",
    "Il presidente del Consiglio durante la conferenza stampa a Palazzo Chigi.",
    "Migliaia di persone in piazza a Roma contro la guerra.",
    "I vigili del fuoco al lavoro dopo il crollo del palazzo.",
    "O presidente Lula discursa no Palácio do Planalto em Brasília.",
    "Manifestantes protestam em frente à Assembleia da República em Lisboa.",
    "Bombeiros combatem as chamas numa floresta no norte do país.",
    "De minister-president tijdens een persconferentie in Den Haag.",
    "Demonstranten op het Malieveld in Den Haag op zaterdag.",
    "Brandweerlieden blussen een brand in een fabriek in Rotterdam.",
];

fn is_latin(text: &str) -> bool {
    text.chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| c.is_ascii() || ('\u{00C0}'..='\u{024F}').contains(&c))
}

#[test]
fn the_rule_keeps_english_and_drops_clear_non_english() {
    let rules = CaptionRules {
        min_words: 0,
        ..CaptionRules::default()
    };
    let outlet = outlet_captions();
    assert!(outlet.len() >= 80, "only {} outlet captions", outlet.len());
    let (demo_english, demo_french) = demo_captions();

    let mut wrong_guess_max = 0f32;
    let mut wrong_guesses = 0usize;
    let mut english_total = 0usize;
    let mut problems = Vec::new();
    let mut cjk_dropped = 0usize;
    for (source, captions) in [("outlet", &outlet), ("demo", &demo_english)] {
        for c in captions {
            let out = clean(c, &rules);
            assert!(
                out.language.is_some() && out.language_confidence.is_some(),
                "{c}"
            );
            if !is_latin(c) {
                // The saved BBC pages include captions in Chinese: they must go.
                if out.drop == Some(DropReason::NonEnglish) {
                    cjk_dropped += 1;
                } else {
                    problems.push(format!("{source}: non-Latin caption kept: {c}"));
                }
                continue;
            }
            english_total += 1;
            if out.language.as_deref() != Some("eng") {
                wrong_guesses += 1;
                wrong_guess_max = wrong_guess_max.max(out.language_confidence.unwrap_or(0.0));
            }
            if out.drop == Some(DropReason::NonEnglish) {
                problems.push(format!(
                    "{source}: English caption dropped ({:?} {:?}): {c}",
                    out.language, out.language_confidence
                ));
            }
        }
    }
    let mut foreign_dropped = 0usize;
    let foreign: Vec<&str> = NON_ENGLISH
        .iter()
        .copied()
        .chain([demo_french.as_str()])
        .collect();
    for c in &foreign {
        let out = clean(c, &rules);
        if out.drop == Some(DropReason::NonEnglish) {
            foreign_dropped += 1;
        } else {
            eprintln!(
                "  kept non-English ({:?} {:.3}): {c}",
                out.language,
                out.language_confidence.unwrap_or(0.0)
            );
        }
    }
    let french = clean(&demo_french, &rules);
    eprintln!(
        "threshold {NON_ENGLISH_MIN_CONFIDENCE}: English (Latin script) {english_total} captions \
         ({} outlet + demo), {wrong_guesses} guessed non-English, highest such confidence \
         {wrong_guess_max:.3}, {} dropped; non-Latin outlet captions dropped {cjk_dropped}; \
         non-English dropped {foreign_dropped}/{}",
        outlet.len(),
        problems.len(),
        foreign.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(cjk_dropped >= 1, "the outlet pages hold Chinese captions");
    assert_eq!(french.drop, Some(DropReason::NonEnglish), "{french:?}");
    assert_eq!(foreign_dropped, foreign.len(), "non-English captions kept");
}

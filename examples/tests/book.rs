//! The book cannot rot: every `{{#include}}` in `book/src` points at a file and anchor that
//! exist, every Rust code block is included from compiled code rather than pasted, and every
//! relative link resolves to a file (and, for `#fragment`s, to a heading in it).
//!
//! `mdbook build book` (in CI) renders the book; these checks are what it does not fail on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src")
}

/// Every Markdown file of the book, with its text.
fn chapters() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("book/src is readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&path).expect("a chapter is UTF-8");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&book_src(), &mut out);
    assert!(out.len() > 10, "found the book's chapters");
    out
}

fn name(path: &Path) -> String {
    path.strip_prefix(book_src())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced code block: its info string, its body, and the line it starts on.
struct Block {
    info: String,
    body: String,
    line: usize,
}

/// The fenced code blocks of a chapter, and its text outside them.
fn split(text: &str) -> (Vec<Block>, String) {
    let mut blocks = Vec::new();
    let mut prose = String::new();
    let mut open: Option<(String, String, usize, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence_len = trimmed.len() - trimmed.trim_start_matches('`').len();
        match &mut open {
            None if fence_len >= 3 => {
                let info = trimmed[fence_len..].trim().to_string();
                open = Some((info, String::new(), i + 1, fence_len));
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
            Some((_, _, _, len)) if fence_len >= *len && trimmed.trim_matches('`').is_empty() => {
                let (info, body, line, _) = open.take().expect("a block is open");
                blocks.push(Block { info, body, line });
            }
            Some((_, body, _, _)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    (blocks, prose)
}

/// The `{{#include path[:anchor]}}` directives in `text`.
fn includes(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#include ") {
        let after = &rest[start + "{{#include ".len()..];
        let end = after.find("}}").expect("an include ends with }}");
        let target = after[..end].trim();
        match target.split_once(':') {
            Some((path, anchor)) => out.push((path.to_string(), Some(anchor.to_string()))),
            None => out.push((target.to_string(), None)),
        }
        rest = &after[end..];
    }
    out
}

#[test]
fn every_include_points_at_an_existing_file_and_anchor() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (path, text) in chapters() {
        let dir = path.parent().expect("a chapter is in a folder");
        for (file, anchor) in includes(&text) {
            count += 1;
            let target = dir.join(&file);
            let Ok(source) = std::fs::read_to_string(&target) else {
                problems.push(format!("{}: {file} does not exist", name(&path)));
                continue;
            };
            let Some(anchor) = anchor else { continue };
            if anchor
                .split(':')
                .all(|n| n.is_empty() || n.parse::<usize>().is_ok())
            {
                problems.push(format!(
                    "{}: {file}:{anchor} includes by line numbers, which drift; use an anchor",
                    name(&path)
                ));
                continue;
            }
            let has = |marker: &str| {
                source.lines().any(|l| {
                    l.split_once(marker)
                        .is_some_and(|(_, rest)| rest.trim() == anchor)
                })
            };
            if !has("ANCHOR: ") || !has("ANCHOR_END: ") {
                problems.push(format!(
                    "{}: {file} has no ANCHOR: {anchor} ... ANCHOR_END: {anchor}",
                    name(&path)
                ));
            }
        }
    }
    assert!(count > 50, "found the includes ({count})");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_rust_code_block_is_included_from_compiled_code() {
    let mut problems = Vec::new();
    for (path, text) in chapters() {
        let (blocks, _) = split(&text);
        for block in blocks {
            let lang = block.info.split([',', ' ']).next().unwrap_or_default();
            let only_includes = block
                .body
                .lines()
                .filter(|l| !l.trim().is_empty())
                .all(|l| l.trim().starts_with("{{#include ") && l.trim().ends_with("}}"));
            let rust = matches!(lang, "rust" | "rs") || block.info.contains("rust");
            if rust && !only_includes {
                problems.push(format!(
                    "{}:{}: a ```{} block with pasted code; include it from a compiled example",
                    name(&path),
                    block.line,
                    block.info
                ));
            }
            if lang.is_empty() && block.body.contains("fn ") {
                problems.push(format!(
                    "{}:{}: an unlabelled block with Rust in it; include it from a compiled example",
                    name(&path),
                    block.line
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// mdbook's id for a heading: lowercase, spaces to `-`, only alphanumerics, `-` and `_` kept.
fn heading_id(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn heading_ids(text: &str) -> BTreeSet<String> {
    let (_, prose) = split(text);
    prose
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| heading_id(l.trim_start_matches('#')))
        .collect()
}

/// The targets of the inline links `[text](target)` in the prose (not in code) of a chapter.
fn links(prose: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = prose;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_relative_link_resolves_to_a_file_and_heading() {
    let all = chapters();
    let mut problems = Vec::new();
    let mut count = 0;
    for (path, text) in &all {
        let (_, prose) = split(text);
        let dir = path.parent().expect("a chapter is in a folder");
        for link in links(&prose) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            count += 1;
            let (file, fragment) = match link.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            if !target.exists() {
                problems.push(format!("{}: {link}: no such file", name(path)));
                continue;
            }
            if let Some(fragment) = fragment
                && target.extension().is_some_and(|e| e == "md")
            {
                let text = std::fs::read_to_string(&target).expect("a chapter is UTF-8");
                if !heading_ids(&text).contains(fragment) {
                    problems.push(format!("{}: {link}: no such heading", name(path)));
                }
            }
        }
    }
    assert!(count > 30, "found the links ({count})");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary_and_every_tutorial_chapter_ends_with_a_checkpoint() {
    let summary = std::fs::read_to_string(book_src().join("SUMMARY.md")).expect("SUMMARY.md");
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for (path, text) in chapters() {
        let chapter = name(&path);
        if chapter == "SUMMARY.md" {
            continue;
        }
        assert!(listed.contains(&chapter), "{chapter} is not in SUMMARY.md");
        let tutorial = summary
            .split("# Tutorial")
            .nth(1)
            .and_then(|t| t.split("\n# ").next())
            .expect("SUMMARY.md has a tutorial part");
        if tutorial.contains(&format!("({chapter})")) && chapter != "tutorial.md" {
            assert!(
                text.contains("\n## Checkpoint\n"),
                "{chapter} is a tutorial chapter without a Checkpoint section"
            );
        }
    }
}

#[test]
fn every_example_the_book_and_readmes_run_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut texts: Vec<(String, String)> = chapters()
        .into_iter()
        .map(|(path, text)| (name(&path), text))
        .collect();
    for readme in ["README.md", "examples/README.md"] {
        let text = std::fs::read_to_string(root.join(readme)).expect("the README exists");
        texts.push((readme.to_string(), text));
    }
    let mut problems = Vec::new();
    let mut count = 0;
    for (file, text) in texts {
        for (at, _) in text.match_indices("--example ") {
            let rest = &text[at + "--example ".len()..];
            let example: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if example.is_empty() {
                continue;
            }
            count += 1;
            let source = root.join("examples/examples").join(format!("{example}.rs"));
            if !source.is_file() {
                problems.push(format!(
                    "{file}: cargo run --example {example}: no such example"
                ));
            }
        }
    }
    assert!(count > 20, "found the commands ({count})");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

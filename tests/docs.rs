//! The documentation's links. For README.md and every docs/*.md, each relative link `](target)` outside fenced
//! code blocks must name a file or directory that exists, and a `#anchor` must match a heading of the target
//! markdown file by GitHub's anchor rule. The README must also stay at most 300 lines and link every document
//! in docs/, so none is orphaned.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 300;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The path as the failure messages show it, relative to the repository root.
fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", shown(path)))
}

/// README.md first, then docs/*.md in name order, so failures come in a stable order.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

/// The lines outside fenced code blocks: links and headings inside examples are not the document's own.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading's text: lowercase, only letters, digits, spaces, hyphens and underscores
/// kept, spaces turned into hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a markdown document defines; a repeated one gets -1, -2, … as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    for line in prose(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        let heading = match line[hashes..].strip_prefix(' ') {
            Some(heading) if (1..=6).contains(&hashes) => heading,
            _ => continue,
        };
        let base = anchor(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while !found.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }
    found
}

/// The targets of a document's links, outside fenced blocks and inline code (where `](` is only text).
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        // Code spans are the odd pieces between backticks; keep the rest.
        let outside: String = line.split('`').step_by(2).collect::<Vec<_>>().join("`");
        let mut rest = outside.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            targets.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    targets
}

/// What is wrong with one link of `doc`, if anything.
fn check_link(doc: &Path, target: &str) -> Option<String> {
    if ["http://", "https://", "mailto:"].iter().any(|scheme| target.starts_with(scheme)) {
        return None;
    }
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    // An empty path is the linking document itself (`#anchor`).
    let resolved = if path.is_empty() { doc.to_path_buf() } else { doc.parent().unwrap().join(path) };
    if !resolved.exists() {
        return Some(format!("{}: link `{target}`: {} does not exist", shown(doc), shown(&resolved)));
    }
    if fragment.is_empty() {
        return None;
    }
    if resolved.extension().is_none_or(|ext| ext != "md") {
        return Some(format!(
            "{}: link `{target}`: an anchor into {}, not a markdown file",
            shown(doc),
            shown(&resolved)
        ));
    }
    if anchors(&read(&resolved)).contains(fragment) {
        return None;
    }
    Some(format!("{}: link `{target}`: {} has no heading with the anchor `{fragment}`", shown(doc), shown(&resolved)))
}

#[test]
fn every_relative_link_resolves() {
    let problems: Vec<String> = documents()
        .iter()
        .flat_map(|doc| link_targets(&read(doc)).into_iter().filter_map(|target| check_link(doc, &target)))
        .collect();
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
}

#[test]
fn readme_is_short() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move detail to docs/"
    );
}

#[test]
fn readme_links_every_document() {
    let readme = root().join("README.md");
    let linked: HashSet<PathBuf> = link_targets(&read(&readme))
        .iter()
        .filter_map(|target| target.split('#').next())
        .filter_map(|path| root().join(path).canonicalize().ok())
        .collect();
    let orphans: Vec<String> = documents()[1..]
        .iter()
        .filter(|doc| !linked.contains(&doc.canonicalize().unwrap()))
        .map(|doc| shown(doc))
        .collect();
    assert!(orphans.is_empty(), "README.md links none of: {}", orphans.join(", "));
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor("`GET /messages`"), "get-messages");
    assert_eq!(anchor("WhatsApp Cloud API: `POST /webhook/whatsapp`"), "whatsapp-cloud-api-post-webhookwhatsapp");
    assert_eq!(anchor("`GET /health/live`, `GET /health/ready`"), "get-healthlive-get-healthready");
    assert_eq!(anchor("Protecting the reads: `READ_API_TOKEN`"), "protecting-the-reads-read_api_token");
    assert_eq!(anchor("On a libSQL server: round trips"), "on-a-libsql-server-round-trips");
    // Repeats are numbered, and headings in fenced blocks (a shell comment) are not headings.
    let found = anchors("## Soak\n### Soak\n```bash\n# by hand\n```\n");
    assert_eq!(found, HashSet::from(["soak".to_string(), "soak-1".to_string()]));
}

//! The explorer's pages, as HTML (maud). Each section opens with one plain sentence saying what
//! the thing is and why it matters, for people who have never seen Sigstore.

use maud::{DOCTYPE, Markup, html};
use sigstack_admission::AdmissionRecord;
use sigstack_pipeline::Verified;

use crate::model::{CertView, EntryView, Head, SignerView};
use crate::source::{ImageView, SeenHead, sbom_summary};

/// The page's style and script, served as files of their own (`/assets/...`): the pages carry no
/// inline code, so their Content-Security-Policy can forbid it.
pub(crate) const STYLE: &str = include_str!("../assets/style.css");
pub(crate) const LIVE: &str = include_str!("../assets/live.js");

fn time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

fn short(text: &str, keep: usize) -> String {
    if text.len() > keep + 1 { format!("{}…", &text[..text.floor_char_boundary(keep)]) } else { text.to_string() }
}

fn check(result: &Result<impl Sized, String>, ok: &str) -> Markup {
    match result {
        Ok(_) => html! { span.ok { "✔ " (ok) } },
        Err(why) => html! { span.bad { "✘ " (why) } },
    }
}

/// The frame every page shares: navigation, a search box, the live indicator.
pub(crate) fn layout(title: &str, active: &str, body: Markup) -> Markup {
    let nav = [("/", "Overview"), ("/log", "Log"), ("/registry", "Registry"), ("/admission", "Admission")];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sigstack explorer" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header {
                    a.brand href="/" { "sigstack explorer" }
                    nav { @for (href, name) in nav { a href=(href) class=[(name == active).then_some("active")] { (name) } } }
                    form action="/search" method="get" { input type="search" name="q" placeholder="digest, log index, UUID, identity or email" aria-label="search"; }
                    span #live title="the page updates itself when the stack changes" { "live" }
                }
                main { (body) }
                script src="/assets/live.js" {}
            }
        }
    }
}

/// `/`: the services, the trust files, the identity, the environment.
pub(crate) fn overview(
    health: &[(String, String, Result<(), String>)],
    trust_files: &[String],
    identity: &str,
    env: &[(String, String)],
) -> Markup {
    let what = |name: &str| match name {
        "oidc" => "mock OIDC issuer: mints GitHub-Actions-shaped identity tokens",
        "fulcio" => "certificate authority (Fulcio-style): turns a token into a 10-minute code-signing certificate",
        "rekor" => "transparency log (Rekor v1): a public, append-only record of every signature",
        "rekor-v2" => "transparency log (Rekor v2, tiles): the same record, served as static tiles",
        "tsa" => "timestamp authority (RFC 3161): signs the time a signature existed",
        "tuf" => "TUF repository: distributes the trust files to clients that bootstrap from it",
        "registry" => "OCI registry: holds the images, their signatures and attestations",
        "explorer" => "this page",
        _ => "",
    };
    layout(
        "Overview",
        "Overview",
        html! {
            h1 { "A local Sigstore, end to end" }
            p.lead { "CI signs an image's digest with a short-lived certificate for its workflow identity, the signature is recorded in a transparency log, an SBOM is attached as a signed attestation, and the cluster admits only images that carry both. Every part of that chain runs here, offline." }
            h2 { "Services" }
            p.explain { "Each service is a local stand-in for its production counterpart; real clients (cosign, sigstore-python, sigstore-js, Kyverno) talk to them unmodified." }
            table {
                thead { tr { th { "service" } th { "URL" } th { "health" } th { "what it is" } } }
                tbody { @for (name, url, ok) in health { tr { td { code { (name) } } td { code { (url) } } td { (check(ok, "answers")) } td { (what(name)) } } } }
            }
            h2 { "Trust files" }
            p.explain { "Clients trust this stack, and only it, through these files: the CA's chain, the logs' and the CT log's keys, the TSA's chain, and where to sign." }
            ul.files { @for file in trust_files { li { a href={ "/trust/" (file) } download { (file) } } } }
            h2 { "Who signs in the demo" }
            p.explain { "Tokens are shaped like a GitHub Actions workflow's; the certificate names the workflow, and policies match that name." }
            p { code { (identity) } }
            h2 { "Point a shell at it" }
            p.explain { "eval \"$(sigstack env)\" sets these, so cosign and the other clients need no flags." }
            pre.env { @for (name, value) in env { (name) "=" (if name.contains("TOKEN") && value.len() > 40 { short(value, 24) } else { value.clone() }) "\n" } }
        },
    )
}

fn signer_cell(entry: &EntryView) -> Markup {
    match &entry.signer {
        SignerView::Certificate(cert) => html! {
            div.identity { (cert.san.join(", ")) }
            @if let Some(issuer) = &cert.issuer { div.small { "issuer " (issuer) } }
            @for (arc, name, value) in cert.extensions.iter().filter(|(arc, _, _)| [12, 14, 13, 9, 20].contains(arc)) {
                div.small title={ "1.3.6.1.4.1.57264.1." (arc) } { (name) ": " (short(value, 60)) }
            }
            div.small { "key " (cert.key_type) " · " a href={ "/certificate/" (entry.log.slug()) "/" (entry.index) } { "certificate" } }
        },
        // Index 0 of every sigstack log is the log's own entry (see docs/trust-and-clients.md on protojson).
        SignerView::Key(_) if entry.index == 0 => {
            html! { div.identity { "the log's genesis entry" } div.small { "signed by the log itself when it was created" } }
        }
        other => html! { div.identity { (other.identity()) } },
    }
}

/// One table of log entries.
pub(crate) fn entries_table(entries: &[EntryView]) -> Markup {
    html! {
        table.entries {
            thead { tr { th { "index" } th { "kind" } th { "artifact digest" } th { "signer" } th { "integrated" } th { "inclusion" } } }
            tbody {
                @for entry in entries {
                    tr id={ "entry-" (entry.log.slug()) "-" (entry.index) } {
                        td { (entry.log.name()) " #" (entry.index) @if let Some(uuid) = &entry.uuid { div.small.mono title=(uuid) { (short(uuid, 16)) } } }
                        td { (entry.kind) " " (entry.version) }
                        td.mono { @if let Some(digest) = &entry.digest { a href={ "/search?q=" (digest) } { (short(digest, 23)) } } }
                        td { (signer_cell(entry)) }
                        td.when { @match entry.integrated_time { Some(t) => (time(t)), None => span.small { "no time of its own (a TSA timestamp gives it)" } } }
                        td { (check(&entry.inclusion, entry.inclusion.as_deref().unwrap_or_default())) }
                    }
                }
            }
        }
    }
}

fn head_line(head: &Head) -> String {
    let root: String = head.root.iter().map(|b| format!("{b:02x}")).collect();
    format!("{} entries, root {}", head.size, short(&root, 16))
}

/// `/log`: both logs' entries, newest first, and how the checkpoints grew.
pub(crate) fn log(
    v1: Option<Result<(Head, Vec<EntryView>), String>>,
    v2: Option<Result<(Head, Vec<EntryView>), String>>,
    seen: &[SeenHead],
) -> Markup {
    layout(
        "Log",
        "Log",
        html! {
            h1 { "Transparency log" }
            p.lead { "Every signature is recorded in an append-only Merkle tree that anyone can check: the log signs its current root (a checkpoint), proves that each entry is in the tree, and that each new tree extends the old one without rewriting it." }
            @for (name, log) in [("Rekor v1", &v1), ("Rekor v2", &v2)] {
                @if let Some(log) = log {
                    h2 { (name) }
                    @match log {
                        Ok((head, entries)) => {
                            p.explain { "Checkpoint verified with the log's key: " code { (head_line(head)) } ". Newest entries first; each signer's certificate decoded; inclusion checked against that checkpoint." }
                            (entries_table(entries))
                        }
                        Err(why) => p.bad { (why) }
                    }
                }
            }
            h2 { "How the checkpoints grew" }
            p.explain { "Each checkpoint this page has seen, newest first, and whether the log proved it extends the one before (a consistency proof)." }
            table {
                thead { tr { th { "seen" } th { "log" } th { "tree" } th { "consistent with the previous" } } }
                tbody { @for s in seen { tr { td { (time(s.seen_at)) } td { (s.log.name()) } td.mono { (head_line(&s.head)) } td { @match &s.consistent { None => span.small { "first seen" }, Some(result) => (check(result, "proved")) } } } } }
            }
        },
    )
}

/// `/certificate/{log}/{index}`: one certificate decoded.
pub(crate) fn certificate(entry: &EntryView) -> Markup {
    layout(
        "Certificate",
        "Log",
        html! {
            h1 { "Certificate of " (entry.log.name()) " entry #" (entry.index) }
            p.lead { "The CA issued this certificate for minutes, to the identity in the token it was shown; the key in it signed the artifact. Its extensions record where the signature came from, and the embedded SCT is a CT log's promise to publish it." }
            @match entry.signer.certificate() {
                Some(cert) => (cert_details(cert)),
                None => p.bad { "This entry was signed with " (entry.signer.identity()) ", not a certificate." }
            }
        },
    )
}

fn cert_details(cert: &CertView) -> Markup {
    let minutes = (cert.not_after.saturating_sub(cert.not_before)) / 60;
    html! {
        table.kv {
            tr { th { "subject alternative name" } td.identity { (cert.san.join(", ")) } }
            tr { th { "OIDC issuer" } td { (cert.issuer.clone().unwrap_or_default()) } }
            tr { th { "valid" } td { (time(cert.not_before as i64)) " → " (time(cert.not_after as i64)) " (" (minutes) " minutes)" } }
            tr { th { "key" } td { (cert.key_type) } }
            tr { th { "chain" } td { (check(&cert.chain, "ends in the stack's CA")) } }
            tr { th { "embedded SCT" } td #sct { (check(&cert.sct, "verifies with the stack's CT log key")) } }
        }
        h2 { "Sigstore extensions (1.3.6.1.4.1.57264.1.*)" }
        table {
            thead { tr { th { "OID" } th { "name" } th { "value" } } }
            tbody { @for (arc, name, value) in &cert.extensions { tr { td.mono { "1.3.6.1.4.1.57264.1." (arc) } td { (name) } td.mono { (value) } } } }
        }
    }
}

/// Where a verified signature is logged: v1 entries carry their integrated time, v2 entries none.
fn log_link(verified: &Verified) -> Markup {
    let log = if verified.integrated_time.is_some() { "v1" } else { "v2" };
    html! { @if let Some(index) = verified.log_index { " (" a href={ "/certificate/" (log) "/" (index) } { "Rekor " (log) " #" (index) } ")" } }
}

fn who(verified: &Verified) -> String {
    verified.sans.join(", ")
}

/// `/registry`: every image, signed or not, attested or not, and by whom.
pub(crate) fn registry(images: Result<Vec<ImageView>, String>) -> Markup {
    layout(
        "Registry",
        "Registry",
        html! {
            h1 { "Registry" }
            p.lead { "Images are stored by digest; a tag is only a movable name. A signature and an SBOM attestation, each verified here against the stack's CA and log, are what admission will ask for." }
            @match images {
                Err(why) => p.bad { (why) },
                Ok(images) => {
                    @if images.is_empty() { p { "No images yet." } }
                    @for image in &images {
                        section.image id={ "image-" (image.repository.replace('/', "-")) "-" (image.tag) } {
                            h2 { code { (image.repository) ":" (image.tag) } }
                            p.mono.small { @match &image.digest { Ok(d) => (d), Err(e) => span.bad { (e) } } }
                            p {
                                @if image.signatures.is_empty() { span.bad.verdict { "✘ not signed" } " " span.small { (image.unsigned_reason.clone().unwrap_or_default()) } }
                                @else { span.ok.verdict { "✔ signed" } " by " @for (i, s) in image.signatures.iter().enumerate() { @if i > 0 { ", " } span.identity { (who(s)) } (log_link(s)) } }
                            }
                            p {
                                @if image.attestations.is_empty() { span.bad.verdict { "✘ no attestations" } }
                                @else { span.ok.verdict { "✔ attested" } }
                                @for a in &image.attestations { " " span.tag { (a.predicate_type().unwrap_or("?")) } " by " span.identity { (who(a)) } (log_link(a)) }
                            }
                            @for a in image.attestations.iter().filter(|a| a.predicate_type() == Some("https://spdx.dev/Document")) {
                                @let summary = sbom_summary(&a.statement.as_ref().map(|s| s["predicate"].clone()).unwrap_or_default());
                                div.sbom {
                                    strong { "SBOM: " (summary.packages) " packages" }
                                    " · licences: " @for (license, count) in &summary.licenses { span.tag { (license) " ×" (count) } " " }
                                    div.small { "packages: " (summary.top.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `/admission`: every decision, newest first.
/// The last `sigstack policy probe` card: score, findings, one row per probe.
fn probe_card(card: &serde_json::Value) -> Markup {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let verdict = |v: &serde_json::Value| match v["admitted"].as_bool() {
        Some(true) => "admitted",
        Some(false) => "refused",
        None => "",
    };
    html! {
        h2 { "Policy report card" }
        p { code { (text(&card["policy"])) } ": probes refused as they should be: "
            strong { (card["score"]["refused"]) "/" (card["score"]["of"]) } }
        @for finding in card["findings"].as_array().into_iter().flatten() { p.bad { "Finding: " (text(finding)) } }
        table.decisions {
            thead { tr { th { "status" } th { "probe" } th { "what" } th { "expected" } th { "sigstack" } th { "Kyverno" } th { "reason" } } }
            tbody {
                @for probe in card["probes"].as_array().into_iter().flatten() {
                    @let status = text(&probe["status"]);
                    tr.{ (if status == "ok" { "admitted" } else if status == "unstated" || status == "over-strict" { "" } else { "denied" }) } {
                        td { (status) } td { code { (text(&probe["name"])) } } td { (text(&probe["what"])) }
                        td { (text(&probe["expected"])) } td { (verdict(&probe["sigstack"])) } td { (verdict(&probe["kyverno"])) }
                        td.small { (short(&text(&probe["sigstack"]["reason"]).to_string(), 160)) }
                    }
                }
            }
        }
    }
}

pub(crate) fn admission(records: &[AdmissionRecord], card: Option<&serde_json::Value>) -> Markup {
    layout(
        "Admission",
        "Admission",
        html! {
            h1 { "Admission" }
            p.lead { "The cluster's gate: the Kyverno policy admits a workload only if its images come from the organisation, are signed by its workflow and carry an SBOM attestation; admitted images are pinned to the digest that was verified." }
            @if let Some(card) = card { (probe_card(card)) h2 { "Decisions" } }
            @if records.is_empty() { p { "No decisions yet: run " code { "sigstack apply" } " or send a Pod through " code { "sigstack webhook" } "." } }
            table.decisions {
                thead { tr { th { "when" } th { "by" } th { "resource" } th { "image" } th { "verdict" } th { "rules and reasons" } } }
                tbody {
                    @for record in records {
                        tr.{ (if record.admitted { "admitted" } else { "denied" }) } {
                            td.when { (time(record.time as i64)) }
                            td { (record.source) }
                            td { code { (record.resource) } }
                            td.mono {
                                (record.images.join(", "))
                                @if record.admitted && record.admitted_images != record.images { div.small { "pinned to " (record.admitted_images.join(", ")) } }
                            }
                            td { @if record.admitted { span.ok.verdict { "✔ admitted" } } @else { span.bad.verdict { "✘ denied" } } }
                            td {
                                @if let Some(message) = &record.message { pre.reason { (message) } }
                                @for rule in record.rules.iter().filter(|r| r.status != "skip") { div.small { (rule.phase) " " (rule.rule) ": " (rule.status) @if !rule.message.is_empty() && rule.status == "pass" { " (" (short(&rule.message, 80)) ")" } } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `/search?q=`.
pub(crate) fn search(query: &str, entries: &[EntryView], problems: &[String]) -> Markup {
    layout(
        "Search",
        "",
        html! {
            h1 { "Search" }
            p.lead { "Find log entries by artifact or image digest, log index, entry UUID, signer identity or email." }
            form action="/search" method="get" { input type="search" name="q" value=(query) autofocus; " " button { "search" } }
            @for problem in problems { p.bad { (problem) } }
            @if !query.is_empty() {
                p { (entries.len()) " entr" (if entries.len() == 1 { "y" } else { "ies" }) " match " code { (query) } "." }
                (entries_table(entries))
            }
        },
    )
}

/// Entries `query` finds: a digest (with or without `sha256:`), an index, a UUID, or text in the
/// signer's identity, issuer or extensions.
pub(crate) fn matches(entry: &EntryView, query: &str) -> bool {
    let q = query.trim().to_ascii_lowercase();
    if q.is_empty() {
        return false;
    }
    if let Ok(index) = q.parse::<u64>() {
        return entry.index == index;
    }
    let bare = q.trim_start_matches("sha256:");
    if bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
        return entry.digest.as_deref().is_some_and(|d| d.ends_with(bare))
            || entry.uuid.as_deref().is_some_and(|u| u.ends_with(bare));
    }
    if q.len() == 80 && q.bytes().all(|b| b.is_ascii_hexdigit()) {
        return entry.uuid.as_deref() == Some(q.as_str());
    }
    match &entry.signer {
        SignerView::Certificate(cert) => {
            cert.san.iter().any(|s| s.to_ascii_lowercase().contains(&q))
                || cert.issuer.as_deref().is_some_and(|i| i.to_ascii_lowercase().contains(&q))
                || cert.extensions.iter().any(|(_, _, v)| v.to_ascii_lowercase().contains(&q))
        }
        other => other.identity().to_ascii_lowercase().contains(&q),
    }
}

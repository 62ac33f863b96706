//! `berth images`

use super::out;
use super::ps::filters_json;
use crate::client::{Client, query};
use crate::error::StatusError;
use crate::format::{ListFormat, go_time_string, human_size, truncate_id};
use anyhow::Result;
use berth_api::{ImageSummary, human_duration};
use clap::Args;
use serde_json::{Map, Value, json};

pub const DEFAULT_TABLE: &str = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub fn header() -> Value {
    json!({
        "ID": "IMAGE ID",
        "Repository": "REPOSITORY",
        "Tag": "TAG",
        "Digest": "DIGEST",
        "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT",
        "Size": "SIZE",
        "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    })
}

/// Split `repo:tag` at the last `:` that comes after the last `/`.
pub fn split_repo_tag(s: &str) -> (String, String) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (s[..i].to_string(), s[i + 1..].to_string()),
        _ => (s.to_string(), "<none>".to_string()),
    }
}

/// One row per repository tag (`<none>` for dangling images), as docker lists them.
pub fn rows(img: &ImageSummary, trunc: bool, now: i64) -> Vec<Value> {
    let id = if trunc {
        truncate_id(&img.id)
    } else {
        img.id.clone()
    };
    let since = if img.created <= 0 {
        "N/A".to_string()
    } else {
        let age = (now - img.created).max(0) as u64;
        format!(
            "{} ago",
            human_duration(std::time::Duration::from_secs(age))
        )
    };
    let created_at = go_time_string(img.created);
    let size = human_size(img.size as f64);
    let digest_of = |repo: &str| {
        img.repo_digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut pairs: Vec<(String, String)> = img
        .repo_tags
        .iter()
        .filter(|t| t.as_str() != "<none>:<none>")
        .map(|t| split_repo_tag(t))
        .collect();
    if pairs.is_empty() {
        // untagged: one row per digested repository, else a dangling row
        for d in &img.repo_digests {
            if let Some((repo, _)) = d.split_once('@')
                && !pairs.iter().any(|(r, _)| r == repo)
                && repo != "<none>"
            {
                pairs.push((repo.to_string(), "<none>".into()));
            }
        }
    }
    if pairs.is_empty() {
        pairs.push(("<none>".into(), "<none>".into()));
    }
    pairs
        .into_iter()
        .map(|(repo, tag)| {
            let mut m = Map::new();
            m.insert("ID".into(), id.clone().into());
            m.insert("Digest".into(), digest_of(&repo).into());
            m.insert("Repository".into(), repo.into());
            m.insert("Tag".into(), tag.into());
            m.insert("CreatedSince".into(), since.clone().into());
            m.insert("CreatedAt".into(), created_at.clone().into());
            m.insert("Size".into(), size.clone().into());
            m.insert("VirtualSize".into(), size.clone().into());
            m.insert(
                "Containers".into(),
                if img.containers < 0 {
                    "N/A".to_string()
                } else {
                    img.containers.to_string()
                }
                .into(),
            );
            m.insert(
                "SharedSize".into(),
                if img.shared_size < 0 {
                    "N/A".to_string()
                } else {
                    human_size(img.shared_size as f64)
                }
                .into(),
            );
            m.insert(
                "UniqueSize".into(),
                if img.shared_size < 0 {
                    "N/A".to_string()
                } else {
                    human_size((img.size - img.shared_size) as f64)
                }
                .into(),
            );
            Value::Object(m)
        })
        .collect()
}

pub async fn run(client: &Client, args: ImagesArgs) -> Result<i32> {
    let default_table = if args.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        DEFAULT_TABLE
    };
    let list =
        ListFormat::for_listing(args.quiet, "{{.ID}}", args.format.as_deref(), default_table)?;
    let mut q = Vec::new();
    if args.all {
        q.push(("all", "1".to_string()));
    }
    let mut filters = args.filter.clone();
    if let Some(r) = &args.reference {
        filters.push(format!("reference={r}"));
    }
    if let Some(f) = filters_json(&filters)? {
        q.push(("filters", f));
    }
    let images: Vec<ImageSummary> = client
        .get_json(&format!("/images/json{}", query(&q)))
        .await?;
    let now = chrono::Utc::now().timestamp();
    let trunc = !args.no_trunc;
    let all_rows: Vec<Value> = images.iter().flat_map(|i| rows(i, trunc, now)).collect();
    let text = list
        .render(&all_rows, &header())
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    out(&text);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn image(tags: &[&str], size: i64) -> ImageSummary {
        ImageSummary {
            id: "sha256:85bb50361186aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            parent_id: String::new(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            created: 1000,
            size,
            shared_size: -1,
            labels: BTreeMap::new(),
            containers: -1,
        }
    }

    #[test]
    fn repo_tag_split() {
        assert_eq!(
            split_repo_tag("alpine:3.19"),
            ("alpine".into(), "3.19".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/app:v1"),
            ("localhost:5000/app".into(), "v1".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/app"),
            ("localhost:5000/app".into(), "<none>".into())
        );
    }

    #[test]
    fn one_row_per_tag() {
        let img = image(&["hello:1", "hello:latest"], 1234);
        let r = rows(&img, true, 1000 + 7200);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["Repository"], "hello");
        assert_eq!(r[0]["Tag"], "1");
        assert_eq!(r[1]["Tag"], "latest");
        assert_eq!(r[0]["ID"], "85bb50361186");
        assert_eq!(r[0]["Size"], "1.23kB");
        assert_eq!(r[0]["CreatedSince"], "2 hours ago");
        let r = rows(&image(&[], 0), false, 1000);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["Repository"], "<none>");
        assert_eq!(r[0]["Tag"], "<none>");
        assert_eq!(r[0]["Size"], "0B");
        assert!(r[0]["ID"].as_str().unwrap().starts_with("sha256:"));
    }

    #[test]
    fn table() {
        let img = image(&["hello:1"], 45_600_000);
        let list = ListFormat::parse(&format!("table {DEFAULT_TABLE}"), DEFAULT_TABLE).unwrap();
        let text = list
            .render(&rows(&img, true, 1000 + 86400 * 3), &header())
            .unwrap();
        assert_eq!(
            text,
            "REPOSITORY   TAG       IMAGE ID       CREATED      SIZE\n\
             hello        1         85bb50361186   3 days ago   45.6MB\n"
        );
    }
}

//! Files from `ui/`, embedded in the binary and served under
//! content-hashed names (`app.3f9a8c1e2b.css`), so a browser may cache them
//! forever and still sees a new file after an upgrade.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::web::WebState;

#[derive(RustEmbed)]
#[folder = "ui/"]
#[exclude = "*.md"]
struct UiFiles;

/// Hex digits of the content hash kept in a file name.
const HASH_CHARS: usize = 10;
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Maps each embedded file to its hashed URL and back.
#[derive(Debug, Default)]
pub struct AssetIndex {
    /// `app.css` → its URL and ETag
    entries: HashMap<String, Entry>,
    /// `app.3f9a8c1e2b.css` → `app.css`
    by_hashed_name: HashMap<String, String>,
}

#[derive(Debug)]
struct Entry {
    /// `/assets/app.3f9a8c1e2b.css`
    url: String,
    /// The full content hash, quoted as an ETag.
    etag: String,
    /// The file gzipped once at start-up, when that makes it smaller:
    /// uPlot goes from 51 KB to about 23 KB on the wire.
    gzip: Option<Vec<u8>>,
}

impl AssetIndex {
    pub fn build() -> Self {
        let mut index = AssetIndex::default();
        for path in UiFiles::iter() {
            let Some(file) = UiFiles::get(&path) else {
                continue;
            };
            let hash = hex(&file.metadata.sha256_hash());
            let hashed = hashed_name(&path, &hash[..HASH_CHARS]);
            let entry = Entry {
                url: format!("/assets/{hashed}"),
                etag: format!("\"{hash}\""),
                gzip: gzipped(&file.data),
            };
            index.entries.insert(path.to_string(), entry);
            index.by_hashed_name.insert(hashed, path.to_string());
        }
        index
    }

    /// The URL to reference `path` (relative to `ui/`) by.
    pub fn url(&self, path: &str) -> &str {
        self.entries
            .get(path)
            .map_or("/assets/missing", |entry| entry.url.as_str())
    }
}

/// `data` gzipped, if that saves at least a tenth (images do not shrink).
fn gzipped(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    let packed = encoder.finish().ok()?;
    (packed.len() * 10 < data.len() * 9).then_some(packed)
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not at `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let named = parts.next().is_some_and(|n| n.eq_ignore_ascii_case("gzip"));
            let weight = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            named && weight > 0.0
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `css/app.css` + `3f9a…` → `css/app.3f9a….css`
fn hashed_name(path: &str, hash: &str) -> String {
    let file_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[file_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let dot = file_start + dot;
            format!("{}.{hash}{}", &path[..dot], &path[dot..])
        }
        _ => format!("{path}.{hash}"),
    }
}

pub async fn serve(
    State(state): State<WebState>,
    Path(requested): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(path) = state.assets.by_hashed_name.get(&requested) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    respond(&state.assets, path, IMMUTABLE, &headers)
}

/// Browsers ask for `/favicon.ico` by themselves; answer with our icon.
pub async fn favicon(State(state): State<WebState>, headers: HeaderMap) -> Response {
    respond(
        &state.assets,
        "favicon.svg",
        "public, max-age=86400",
        &headers,
    )
}

fn respond(
    index: &AssetIndex,
    path: &str,
    cache_control: &'static str,
    headers: &HeaderMap,
) -> Response {
    let (Some(file), Some(entry)) = (UiFiles::get(path), index.entries.get(path)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = entry.etag.as_str();
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mime = file.metadata.mimetype().to_owned();
        match &entry.gzip {
            Some(packed) if accepts_gzip(headers) => (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CONTENT_ENCODING, "gzip".to_owned()),
                ],
                packed.clone(),
            )
                .into_response(),
            _ => ([(header::CONTENT_TYPE, mime)], file.data.into_owned()).into_response(),
        }
    };
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert_eq!(hashed_name("app.css", "abc"), "app.abc.css");
        assert_eq!(
            hashed_name("vendor/uPlot.min.js", "abc"),
            "vendor/uPlot.min.abc.js"
        );
        assert_eq!(hashed_name("LICENSE", "abc"), "LICENSE.abc");
        assert_eq!(hashed_name("dir.d/file", "abc"), "dir.d/file.abc");
    }

    #[test]
    fn gzip_only_when_accepted() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            accepts_gzip(&headers)
        };
        assert!(with("gzip"));
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip; q=0.000"));
        assert!(!with("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_gzipped_asset_unpacks_to_the_file() {
        use http_body_util::BodyExt;
        use std::io::Read;
        let index = AssetIndex::build();
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let path = "vendor/uplot/uPlot.iife.min.js";
        let response = respond(&index, path, IMMUTABLE, &headers);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let packed = response.into_body().collect().await.unwrap().to_bytes();
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        let file = UiFiles::get(path).unwrap();
        assert_eq!(unpacked, file.data.as_ref());
        assert!(packed.len() * 2 < unpacked.len(), "{} bytes", packed.len());
        let plain = respond(&index, path, IMMUTABLE, &HeaderMap::new());
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn every_embedded_file_has_a_hashed_url() {
        let index = AssetIndex::build();
        assert!(index.url("app.css").starts_with("/assets/app."));
        assert_eq!(index.by_hashed_name.len(), UiFiles::iter().count());
    }
}

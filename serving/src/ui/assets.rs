//! The browser files, embedded in the binary and served under versioned paths with
//! `Cache-Control: immutable`: a new file is a new URL, so a browser never keeps a stale one.
//! htmx and ECharts carry their npm version in the name (vendored by
//! `scripts/vendor-assets.sh`); our own script and style sheet carry a hash of their content.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// One served file.
struct Asset {
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

const HTMX: &str = "htmx-2.0.11.min.js";
const ECHARTS: &str = "echarts-6.1.0.common.min.js";

/// FNV-1a: a stable content hash for cache-busting names (not a security measure).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    format!("{stem}.{:012x}.{ext}", fnv(bytes) & 0xffff_ffff_ffff)
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    const JS: &str = "text/javascript; charset=utf-8";
    let app_js: &'static [u8] = include_bytes!("../../assets/app.js");
    let app_css: &'static [u8] = include_bytes!("../../assets/app.css");
    vec![
        Asset { name: HTMX.into(), content_type: JS, bytes: include_bytes!("../../assets/htmx-2.0.11.min.js") },
        Asset {
            name: ECHARTS.into(),
            content_type: JS,
            bytes: include_bytes!("../../assets/echarts-6.1.0.common.min.js"),
        },
        Asset { name: hashed("app", "js", app_js), content_type: JS, bytes: app_js },
        Asset { name: hashed("app", "css", app_css), content_type: "text/css; charset=utf-8", bytes: app_css },
        Asset {
            name: "htmx.org-2.0.11.LICENSE.txt".into(),
            content_type: "text/plain; charset=utf-8",
            bytes: include_bytes!("../../assets/htmx.org-2.0.11.LICENSE"),
        },
        Asset {
            name: "echarts-6.1.0.LICENSE.txt".into(),
            content_type: "text/plain; charset=utf-8",
            bytes: include_bytes!("../../assets/echarts-6.1.0.LICENSE"),
        },
        Asset {
            name: "echarts-6.1.0.NOTICE.txt".into(),
            content_type: "text/plain; charset=utf-8",
            bytes: include_bytes!("../../assets/echarts-6.1.0.NOTICE"),
        },
    ]
});

/// The URLs pages link to.
#[derive(Debug, Clone)]
pub struct AssetUrls {
    /// htmx.
    pub htmx: String,
    /// ECharts (common build).
    pub echarts: String,
    /// Our script (charts from JSON, table sorting).
    pub app_js: String,
    /// Our style sheet.
    pub app_css: String,
}

/// The current versioned URLs.
pub fn urls() -> &'static AssetUrls {
    static URLS: LazyLock<AssetUrls> = LazyLock::new(|| {
        let url = |i: usize| format!("/assets/{}", ASSETS[i].name);
        AssetUrls { htmx: url(0), echarts: url(1), app_js: url(2), app_css: url(3) }
    });
    &URLS
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return crate::error::ApiError::NotFound(format!("no asset {name:?}")).into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_files_are_named_by_their_content() {
        assert_ne!(hashed("app", "js", b"a"), hashed("app", "js", b"b"));
        assert!(urls().app_js.starts_with("/assets/app.") && urls().app_js.ends_with(".js"));
        assert_eq!(urls().htmx, "/assets/htmx-2.0.11.min.js");
    }
}

//! The catalog (`/ui/catalog`): search the imported package indexes, and the package-name
//! suggestions the task forms ask for (`/ui/catalog/suggest`, JSON).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use serde::Serialize;

use super::common::{Ctx, blocking, query_field, render};
use super::{UiRoute, page};
use crate::http::AppState;
use crate::http::Verb::Get;

pub(super) const TEMPLATE: (&str, &str) = ("catalog.html", include_str!("templates/catalog.html"));

/// This module's routes (built by [`super::routes`]).
pub(super) static ROUTES: &[UiRoute] = &[
    page(Get, "/ui/catalog", |m| on(m, catalog)),
    page(Get, "/ui/catalog/suggest", |m| on(m, suggest)),
];

/// Catalog search results per page.
const CATALOG_HITS: usize = 100;
/// Package-name suggestions per request.
const SUGGESTIONS: usize = 20;

#[derive(Serialize)]
struct Hit<'a> {
    name: &'a str,
    version: &'a str,
    description: &'a str,
    catalog: &'a str,
}

#[derive(Serialize)]
struct CatalogRow {
    name: String,
    packages: u64,
    verified: bool,
    source: String,
}

async fn catalog(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_field(query.as_deref(), "q");
    let st = state.clone();
    let catalogs = match blocking(move || st.app.catalogs()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let catalogs: Vec<CatalogRow> = catalogs
        .into_iter()
        .map(|c| CatalogRow {
            source: if c.url.is_empty() {
                "uploaded file".into()
            } else {
                format!("{} {}", c.url, c.suite)
            },
            name: c.name,
            packages: c.packages,
            verified: c.verified,
        })
        .collect();
    let index = state.app.catalog_index();
    let hits: Vec<Hit> = index
        .search(&q, CATALOG_HITS)
        .into_iter()
        .map(|e| Hit {
            name: &e.name,
            version: &e.version,
            description: e.description.lines().next().unwrap_or(""),
            catalog: &e.catalog,
        })
        .collect();
    let mut page = tera::Context::new();
    page.insert("title", "Catalog");
    page.insert("nav", "catalog");
    page.insert("q", &q);
    page.insert("hits", &hits);
    page.insert("cap", &CATALOG_HITS);
    page.insert("indexed", &index.len());
    page.insert("catalogs", &catalogs);
    render(&state, &ctx, StatusCode::OK, "catalog.html", page)
}

/// Package names for the autocomplete: names starting with `q` first, then names containing
/// it; each once; at most [`SUGGESTIONS`].
fn suggestions(index: &crate::catalog::SearchIndex, q: &str) -> Vec<String> {
    let term = q.trim().to_lowercase();
    let mut seen = BTreeSet::new();
    index
        .search(&term, SUGGESTIONS * 4)
        .into_iter()
        .filter(|e| e.name.contains(&term))
        .filter(|e| seen.insert(e.name.as_str()))
        .take(SUGGESTIONS)
        .map(|e| e.name.clone())
        .collect()
}

async fn suggest(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let q = query_field(query.as_deref(), "q");
    let names = suggestions(&state.app.catalog_index(), &q);
    let body = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.into_bytes(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_names_each_once() {
        let idx = crate::catalog::SearchIndex::new(
            [
                ("a", "nginx", "1", "web server"),
                ("b", "nginx", "2", "web server"),
                ("a", "libnginx-mod", "1", "module"),
                ("a", "apache2", "1", "like nginx"),
            ]
            .map(|(c, n, v, d)| (c.into(), n.into(), v.into(), d.into())),
        );
        assert_eq!(suggestions(&idx, "nginx"), vec!["nginx", "libnginx-mod"]);
        assert!(suggestions(&idx, "").is_empty());
    }
}

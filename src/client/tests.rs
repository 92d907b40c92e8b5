//! Every `/api/v1` route has a client method: each method is called against a router built
//! from the server's own `API_ROUTES`, whose every route answers with its method, pattern and
//! the URI it was reached by. A server route that no method reaches fails the test, and so
//! does a method that reaches another route than the one it names.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::routing::{MethodFilter, on};

use super::{Client, ClientError};
use crate::api::{
    ApplyRequest, AuditQuery, AuditRequest, CatalogImport, DiffQuery, EditRequest, ErrorBody,
    ExportQuery, KeyImportRequest, KeyRetireRequest, LogQuery, RenderQuery, RollbackRequest,
    SearchQuery, StatusQuery, TokenRequest, TokenRotateRequest, UserRequest,
};
use crate::http::{API_ROUTES, Verb};

/// A router with every route of `API_ROUTES` under `/api/v1`, each answering 418 with `"<METHOD> <pattern>
/// <uri>"` as its error, and the base URL it listens on.
fn recording_server(rt: &tokio::runtime::Runtime) -> String {
    let mut router = axum::Router::new();
    for r in API_ROUTES {
        let filter = match r.verb {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        };
        let route = format!("{} {}", r.verb.as_str(), r.path);
        router = router.route(
            r.path,
            on(filter, move |OriginalUri(uri): OriginalUri| async move {
                let error = format!("{route} {uri}");
                (StatusCode::IM_A_TEAPOT, Json(ErrorBody { error }))
            }),
        );
    }
    let router = axum::Router::new().nest("/api/v1", router);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

type Call = Box<dyn Fn(&Client) -> Result<(), ClientError>>;

fn call<T>(f: impl Fn(&Client) -> Result<T, ClientError> + 'static) -> Call {
    Box::new(move |c| f(c).map(drop))
}

/// Each client method, the route it names and the URI it sends. Arguments hold a space, a
/// slash and a non-ASCII letter, so a path segment stays one segment.
fn calls() -> Vec<(&'static str, &'static str, Call)> {
    const ODD: &str = "a b/é";
    let user = || UserRequest {
        name: "u".into(),
        role: None,
        password: "p".into(),
    };
    let apply = || ApplyRequest {
        text: String::new(),
        name: "f.toml".into(),
        json: false,
        dry_run: true,
        force: false,
    };
    vec![
        ("GET /server", "/api/v1/server", call(|c| c.server())),
        ("GET /nodes", "/api/v1/nodes", call(|c| c.nodes())),
        (
            "GET /nodes/{host}",
            "/api/v1/nodes/a%20b%2F%C3%A9",
            call(|c| c.node(ODD)),
        ),
        (
            "GET /nodes/{host}/token",
            "/api/v1/nodes/a%20b%2F%C3%A9/token",
            call(|c| c.node_token(ODD)),
        ),
        (
            "POST /nodes/{host}/token",
            "/api/v1/nodes/a%20b%2F%C3%A9/token",
            call(|c| c.rotate_node_token(ODD, &TokenRotateRequest { force: true })),
        ),
        (
            "GET /nodes/{host}/render",
            "/api/v1/nodes/a%20b%2F%C3%A9/render?path=%2Fetc%2Fa+b",
            call(|c| {
                c.render(
                    ODD,
                    &RenderQuery {
                        path: "/etc/a b".into(),
                    },
                )
            }),
        ),
        ("GET /tasks", "/api/v1/tasks", call(|c| c.tasks())),
        (
            "GET /tasks/{task}",
            "/api/v1/tasks/a%20b%2F%C3%A9",
            call(|c| c.task(ODD)),
        ),
        ("GET /vars", "/api/v1/vars", call(|c| c.vars())),
        (
            "GET /log",
            "/api/v1/log?host=web&limit=20",
            call(|c| {
                c.log(&LogQuery {
                    host: Some("web".into()),
                    task: None,
                    limit: Some(20),
                })
            }),
        ),
        (
            "GET /status",
            "/api/v1/status",
            call(|c| c.status(&StatusQuery::default())),
        ),
        (
            "GET /status/{host}",
            "/api/v1/status/a%20b%2F%C3%A9",
            call(|c| c.host_status(ODD)),
        ),
        (
            "POST /edit",
            "/api/v1/edit",
            call(|c| {
                c.edit(&EditRequest {
                    ops: Vec::new(),
                    force: false,
                })
            }),
        ),
        (
            "GET /export",
            "/api/v1/export?secrets=true&history=false",
            call(|c| {
                c.export(&ExportQuery {
                    secrets: true,
                    history: false,
                })
            }),
        ),
        (
            "POST /apply",
            "/api/v1/apply",
            call(move |c| c.apply(&apply())),
        ),
        (
            "POST /import",
            "/api/v1/import",
            call(move |c| c.import(&apply())),
        ),
        (
            "POST /rollback",
            "/api/v1/rollback",
            call(|c| {
                c.rollback(&RollbackRequest {
                    to: 1,
                    dry_run: true,
                    force: false,
                })
            }),
        ),
        (
            "GET /diff",
            "/api/v1/diff?from=1&to=2",
            call(|c| c.diff(&DiffQuery { from: 1, to: 2 })),
        ),
        (
            "GET /audit",
            "/api/v1/audit?limit=5",
            call(|c| c.audit(&AuditQuery { limit: Some(5) })),
        ),
        (
            "POST /audit",
            "/api/v1/audit",
            call(|c| {
                c.record_audit(&AuditRequest {
                    targets: Vec::new(),
                    command: "true".into(),
                    results: Vec::new(),
                })
            }),
        ),
        (
            "GET /backup",
            "/api/v1/backup",
            call(|c| c.backup(&mut std::io::sink())),
        ),
        ("GET /catalogs", "/api/v1/catalogs", call(|c| c.catalogs())),
        (
            "GET /catalogs/{name}",
            "/api/v1/catalogs/a%20b%2F%C3%A9",
            call(|c| c.catalog(ODD)),
        ),
        (
            "DELETE /catalogs/{name}",
            "/api/v1/catalogs/a%20b%2F%C3%A9",
            call(|c| c.remove_catalog(ODD)),
        ),
        (
            "POST /catalogs/{name}/import",
            "/api/v1/catalogs/a%20b%2F%C3%A9/import",
            call(|c| {
                c.import_catalog(
                    ODD,
                    &CatalogImport {
                        url: "http://127.0.0.1/debian".into(),
                        suite: "stable".into(),
                        components: Vec::new(),
                        archs: Vec::new(),
                        keyring: None,
                        allow_private: false,
                    },
                )
            }),
        ),
        (
            "POST /catalogs/{name}/file",
            "/api/v1/catalogs/a%20b%2F%C3%A9/file",
            call(|c| c.upload_catalog(ODD, b"Package: x\n")),
        ),
        (
            "GET /catalog/search",
            "/api/v1/catalog/search?q=a+b%26c&limit=3",
            call(|c| {
                c.search_catalogs(&SearchQuery {
                    q: "a b&c".into(),
                    limit: Some(3),
                })
            }),
        ),
        (
            "GET /catalog/packages/{name}",
            "/api/v1/catalog/packages/a%20b%2F%C3%A9",
            call(|c| c.catalog_package(ODD)),
        ),
        ("GET /keys", "/api/v1/keys", call(|c| c.keys())),
        (
            "GET /keys/status",
            "/api/v1/keys/status",
            call(|c| c.key_status()),
        ),
        (
            "POST /keys/rotate",
            "/api/v1/keys/rotate",
            call(|c| c.rotate_key()),
        ),
        (
            "POST /keys/import",
            "/api/v1/keys/import",
            call(|c| {
                c.import_key(&KeyImportRequest {
                    key_base64: String::new(),
                })
            }),
        ),
        (
            "POST /keys/retire",
            "/api/v1/keys/retire",
            call(|c| {
                c.retire_key(&KeyRetireRequest {
                    fingerprint: "AB".into(),
                    force: false,
                })
            }),
        ),
        ("GET /users", "/api/v1/users", call(|c| c.users())),
        (
            "POST /users",
            "/api/v1/users",
            call(move |c| c.add_user(&user())),
        ),
        (
            "DELETE /users/{name}",
            "/api/v1/users/a%20b%2F%C3%A9",
            call(|c| c.remove_user(ODD)),
        ),
        (
            "POST /users/{name}/password",
            "/api/v1/users/a%20b%2F%C3%A9/password",
            call(move |c| c.set_password(ODD, &user())),
        ),
        ("GET /tokens", "/api/v1/tokens", call(|c| c.tokens())),
        (
            "POST /tokens",
            "/api/v1/tokens",
            call(|c| c.create_token(&TokenRequest::default())),
        ),
        (
            "DELETE /tokens/{id}",
            "/api/v1/tokens/a%20b%2F%C3%A9",
            call(|c| c.revoke_token(ODD)),
        ),
    ]
}

#[test]
fn every_api_route_has_a_client_method() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::new(&recording_server(&rt), "t", || super::Trust::System);
    let mut reached = BTreeSet::new();
    for (route, uri, f) in calls() {
        match f(&client) {
            Err(ClientError::Api {
                status: 418,
                message,
            }) => assert_eq!(message, format!("{route} {uri}"), "the method for {route}"),
            other => panic!("the method for {route}: {other:?}"),
        }
        assert!(reached.insert(route), "{route} is listed twice");
    }
    let routes: BTreeSet<String> = API_ROUTES
        .iter()
        .map(|r| format!("{} {}", r.verb.as_str(), r.path))
        .collect();
    let reached: BTreeSet<String> = reached.into_iter().map(String::from).collect();
    let missing: Vec<&String> = routes.difference(&reached).collect();
    assert!(missing.is_empty(), "no client method for {missing:?}");
    assert_eq!(reached, routes);
}

/// A query whose fields are all absent adds no `?`; `failing` adds one pair.
#[test]
fn queries_are_written_as_umcd_reads_them() {
    let q = |s: &StatusQuery| serde_urlencoded::to_string(s).expect("encode");
    assert_eq!(q(&StatusQuery::default()), "");
    assert_eq!(
        q(&StatusQuery {
            failing: Some(true)
        }),
        "failing=true"
    );
    let log = LogQuery {
        host: Some("a b".into()),
        task: None,
        limit: Some(3),
    };
    let back: LogQuery =
        serde_urlencoded::from_str(&serde_urlencoded::to_string(&log).expect("encode"))
            .expect("decode");
    assert_eq!(
        (back.host, back.task, back.limit),
        (log.host, log.task, log.limit)
    );
}

//! One method per `/api/v1` route, in the order of the server's `API_ROUTES`. Path arguments
//! are percent-encoded here; queries are the wire types umcd deserializes.

use super::{Client, ClientError, enc};
use crate::api::{
    ApplyRequest, ApplyResponse, AuditEntry, AuditQuery, AuditRequest, CatalogHit, CatalogImport,
    CatalogInfo, CatalogPackage, DiffQuery, DiffResponse, EditRequest, EditResponse, ExportQuery,
    HostStatus, HostStatusDetail, ImportResponse, KeyChangeResponse, KeyImportRequest, KeyInfo,
    KeyRetireRequest, KeyStatus, LogEntry, LogQuery, NodeInfo, NodeToken, RenderQuery,
    RenderedFile, RollbackRequest, SearchQuery, ServerInfo, StatusQuery, TaskInfo, TokenCreated,
    TokenInfo, TokenRequest, TokenRevoked, TokenRotateRequest, TokenRotateResponse, UserChanged,
    UserInfo, UserRequest, VarValues,
};
use crate::fleetfile::Fleet;

type Result<T> = std::result::Result<T, ClientError>;

impl Client {
    /// `GET /server`: umcd's version, generation, architectures and signing keys.
    pub fn server(&self) -> Result<ServerInfo> {
        self.get("/server")
    }

    /// `GET /nodes`
    pub fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.get("/nodes")
    }

    /// `GET /nodes/{host}`
    pub fn node(&self, host: &str) -> Result<NodeInfo> {
        self.get(&format!("/nodes/{}", enc(host)))
    }

    /// `GET /nodes/{host}/token`: the node's apt password (admin).
    pub fn node_token(&self, host: &str) -> Result<NodeToken> {
        self.get(&format!("/nodes/{}/token", enc(host)))
    }

    /// `POST /nodes/{host}/token`: a new token for the node (admin).
    pub fn rotate_node_token(
        &self,
        host: &str,
        req: &TokenRotateRequest,
    ) -> Result<TokenRotateResponse> {
        self.post(&format!("/nodes/{}/token", enc(host)), req)
    }

    /// `GET /nodes/{host}/render?path=`: one file as the host gets it (admin).
    pub fn render(&self, host: &str, query: &RenderQuery) -> Result<RenderedFile> {
        self.get_query(&format!("/nodes/{}/render", enc(host)), query)
    }

    /// `GET /tasks`
    pub fn tasks(&self) -> Result<Vec<TaskInfo>> {
        self.get("/tasks")
    }

    /// `GET /tasks/{task}`
    pub fn task(&self, task: &str) -> Result<TaskInfo> {
        self.get(&format!("/tasks/{}", enc(task)))
    }

    /// `GET /vars`: the global variables (values hidden from viewers).
    pub fn vars(&self) -> Result<VarValues> {
        self.get("/vars")
    }

    /// `GET /log`
    pub fn log(&self, query: &LogQuery) -> Result<Vec<LogEntry>> {
        self.get_query("/log", query)
    }

    /// `GET /status`: every host judged now.
    pub fn status(&self, query: &StatusQuery) -> Result<Vec<HostStatus>> {
        self.get_query("/status", query)
    }

    /// `GET /status/{host}`: the host's row and its recent reports.
    pub fn host_status(&self, host: &str) -> Result<HostStatusDetail> {
        self.get(&format!("/status/{}", enc(host)))
    }

    /// `POST /edit`: the ops as one generation.
    pub fn edit(&self, req: &EditRequest) -> Result<EditResponse> {
        self.post("/edit", req)
    }

    /// `GET /export`: the whole model as a fleet file.
    pub fn export(&self, query: &ExportQuery) -> Result<Fleet> {
        self.get_query("/export", query)
    }

    /// `POST /apply`: make the model equal a fleet file (admin).
    pub fn apply(&self, req: &ApplyRequest) -> Result<ApplyResponse> {
        self.post("/apply", req)
    }

    /// `POST /import`: restore an export into an empty server (admin).
    pub fn import(&self, req: &ApplyRequest) -> Result<ImportResponse> {
        self.post("/import", req)
    }

    /// `POST /rollback`: a new generation with an earlier one's model (admin).
    pub fn rollback(&self, req: &RollbackRequest) -> Result<ApplyResponse> {
        self.post("/rollback", req)
    }

    /// `GET /diff`: what changed between two generations.
    pub fn diff(&self, query: &DiffQuery) -> Result<DiffResponse> {
        self.get_query("/diff", query)
    }

    /// `GET /audit`: the fleet commands umc-admin recorded, newest first.
    pub fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.get_query("/audit", query)
    }

    /// `POST /audit`: records a fleet command in the server's history.
    pub fn record_audit(&self, req: &AuditRequest) -> Result<AuditEntry> {
        self.post("/audit", req)
    }

    /// `GET /backup`: the backup container, copied into `out`; returns its size (admin).
    pub fn backup(&self, out: &mut impl std::io::Write) -> Result<u64> {
        self.download("/backup", out)
    }

    /// `GET /catalogs`
    pub fn catalogs(&self) -> Result<Vec<CatalogInfo>> {
        self.get("/catalogs")
    }

    /// `GET /catalogs/{name}`
    pub fn catalog(&self, name: &str) -> Result<CatalogInfo> {
        self.get(&format!("/catalogs/{}", enc(name)))
    }

    /// `DELETE /catalogs/{name}` (admin).
    pub fn remove_catalog(&self, name: &str) -> Result<CatalogInfo> {
        self.delete(&format!("/catalogs/{}", enc(name)))
    }

    /// `POST /catalogs/{name}/import`: umcd fetches and verifies the index (admin).
    pub fn import_catalog(&self, name: &str, req: &CatalogImport) -> Result<CatalogInfo> {
        self.post(&format!("/catalogs/{}/import", enc(name)), req)
    }

    /// `POST /catalogs/{name}/file`: a Packages file, unverified (admin).
    pub fn upload_catalog(&self, name: &str, packages: &[u8]) -> Result<CatalogInfo> {
        self.post_bytes(&format!("/catalogs/{}/file", enc(name)), packages)
    }

    /// `GET /catalog/search`
    pub fn search_catalogs(&self, query: &SearchQuery) -> Result<Vec<CatalogHit>> {
        self.get_query("/catalog/search", query)
    }

    /// `GET /catalog/packages/{name}`: the package in every catalog.
    pub fn catalog_package(&self, name: &str) -> Result<Vec<CatalogPackage>> {
        self.get(&format!("/catalog/packages/{}", enc(name)))
    }

    /// `GET /keys`: the signing keys, newest first.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.get("/keys")
    }

    /// `GET /keys/status`: which nodes have every current key.
    pub fn key_status(&self) -> Result<KeyStatus> {
        self.get("/keys/status")
    }

    /// `POST /keys/rotate`: a new signing key (admin).
    pub fn rotate_key(&self) -> Result<KeyChangeResponse> {
        self.post("/keys/rotate", &serde_json::json!({}))
    }

    /// `POST /keys/import`: an existing secret key (admin).
    pub fn import_key(&self, req: &KeyImportRequest) -> Result<KeyChangeResponse> {
        self.post("/keys/import", req)
    }

    /// `POST /keys/retire`: stop signing with a key (admin).
    pub fn retire_key(&self, req: &KeyRetireRequest) -> Result<KeyChangeResponse> {
        self.post("/keys/retire", req)
    }

    /// `GET /users` (admin).
    pub fn users(&self) -> Result<Vec<UserInfo>> {
        self.get("/users")
    }

    /// `POST /users` (admin).
    pub fn add_user(&self, req: &UserRequest) -> Result<UserInfo> {
        self.post("/users", req)
    }

    /// `DELETE /users/{name}`: the user and its tokens (admin).
    pub fn remove_user(&self, name: &str) -> Result<UserChanged> {
        self.delete(&format!("/users/{}", enc(name)))
    }

    /// `POST /users/{name}/password` (admin).
    pub fn set_password(&self, name: &str, req: &UserRequest) -> Result<UserChanged> {
        self.post(&format!("/users/{}/password", enc(name)), req)
    }

    /// `GET /tokens`: the caller's tokens (an admin's: everyone's).
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.get("/tokens")
    }

    /// `POST /tokens`: a token for the calling user, shown once.
    pub fn create_token(&self, req: &TokenRequest) -> Result<TokenCreated> {
        self.post("/tokens", req)
    }

    /// `DELETE /tokens/{id}`
    pub fn revoke_token(&self, id: &str) -> Result<TokenRevoked> {
        self.delete(&format!("/tokens/{}", enc(id)))
    }
}

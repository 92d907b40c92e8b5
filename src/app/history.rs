//! History beside the model: the change log of every generation, and the audit records of
//! the fleet commands umc-admin ran (history, not edits: recording one makes no generation).

use crate::api::{AuditEntry, AuditRequest, LogEntry};
use crate::model::Entity;
use crate::store::audit_started;

use super::{App, AppError, now};

impl App {
    /// The newest `limit` generations' change lines, newest first; only the lines that
    /// touched `entity` when one is given.
    pub fn log(&self, entity: Option<&Entity>, limit: usize) -> Result<Vec<LogEntry>, AppError> {
        Ok(self.store.log(entity, limit)?)
    }

    /// The newest `limit` fleet commands, newest first.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, AppError> {
        Ok(self.store.audit(limit)?)
    }

    /// Records a fleet command `user` ran, received now.
    pub fn record_audit(&self, user: &str, req: AuditRequest) -> Result<AuditEntry, AppError> {
        if req.command.trim().is_empty() {
            return Err(AppError::Invalid("audit record: empty command".into()));
        }
        let time = now();
        let id = self.store.record_audit(user, &req, time)?;
        Ok(AuditEntry {
            id,
            time,
            started: audit_started(time, req.results.iter().map(|r| r.duration_ms)),
            user: user.to_string(),
            targets: req.targets,
            command: req.command,
            results: req.results,
        })
    }
}

//! Which route group a request is in. The groups are declared where the
//! routes are (`auth::access`): each puts its [`Access`] into the request
//! before anything else of the group runs, so the audit trail and the
//! extractors know the group without a second list of paths.

/// The route groups, and so who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-in, setup, health checks, assets, the API description).
    Public,
    /// A signed-in user's session.
    SignedIn,
    /// A signed-in admin's session.
    Admin,
    /// An API token of the ingest scope (and nothing else).
    IngestToken,
    /// A session, or an API token of the read scope.
    ReadToken,
}

impl Access {
    /// Whether callers are programs, whose errors are JSON rather than
    /// pages.
    pub fn is_api(self) -> bool {
        matches!(self, Access::IngestToken | Access::ReadToken)
    }
}

//! Dashboard users and their sessions. NOT FINISHED: being built on the
//! `wt-auth` branch (argon2id passwords, sessions in redb with idle and
//! absolute expiry, one-time sign-in links). Only the role type is here.

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, secrets included.
    Admin,
    /// Reads reports and logs; sees no secret; changes nothing.
    Viewer,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

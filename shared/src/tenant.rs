//! Authority as a type: a `TenantCtx` says who is acting and for which company. Only the auth
//! code can build one (the constructors are `pub(crate)`), and every database access takes it.

use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;

/// A company (tenant) id. Object keys, vector filters and RLS settings are derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CompanyId(Uuid);

impl CompanyId {
    pub(crate) fn new(id: Uuid) -> Self {
        Self(id)
    }
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
    /// Platform-wide knowledge (the nil UUID in vector payloads); readable by every company.
    pub const GLOBAL: CompanyId = CompanyId(Uuid::nil());
    pub fn is_global(&self) -> bool {
        self.0.is_nil()
    }
}

impl std::fmt::Display for CompanyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    MasterAdmin,
    CompanyAdmin,
    SupportAgent,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::MasterAdmin => "master_admin",
            Role::CompanyAdmin => "company_admin",
            Role::SupportAgent => "support_agent",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "master_admin" => Some(Role::MasterAdmin),
            "company_admin" => Some(Role::CompanyAdmin),
            "support_agent" => Some(Role::SupportAgent),
            _ => None,
        }
    }
}

/// Who is acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    User {
        user_id: Uuid,
        role: Role,
    },
    ApiKey {
        key_id: Uuid,
        scopes: Vec<String>,
    },
    /// A queue worker acting on a job our own code enqueued for this company.
    Worker,
    /// A visitor of the company's widget (or public API); inside a conversation once its
    /// session token was presented.
    Customer {
        conversation_id: Option<Uuid>,
    },
}

/// What a route wants to do; checked by [`TenantCtx::authorize`], the one permission function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Companies,
    Team,
    Invitations,
    ApiKeys,
    Agents,
    Knowledge,
    Conversations,
    Messages,
    Analytics,
    AuditLogs,
    /// Channel configurations (their credentials): company admins only.
    Channels,
}

impl Resource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Resource::Companies => "companies",
            Resource::Team => "team",
            Resource::Invitations => "invitations",
            Resource::ApiKeys => "api_keys",
            Resource::Agents => "agents",
            Resource::Knowledge => "knowledge",
            Resource::Conversations => "conversations",
            Resource::Messages => "messages",
            Resource::Analytics => "analytics",
            Resource::AuditLogs => "audit_logs",
            Resource::Channels => "channels",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(&self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// API-key scopes a company admin may grant, `<access>:<resource>`.
pub const API_KEY_SCOPES: &[&str] = &[
    "read:conversations",
    "write:conversations",
    "write:messages",
    "read:messages",
    "read:analytics",
    "read:knowledge",
    "write:knowledge",
    "read:agents",
    "read:team",
];

#[derive(Clone, Debug)]
pub struct TenantCtx {
    company_id: Option<CompanyId>,
    principal: Principal,
    /// `chatapp_users.permissions`, e.g. `{"team": ["read"], "knowledge": ["read", "write"]}`.
    permissions: serde_json::Value,
}

impl TenantCtx {
    pub(crate) fn new(company_id: Option<CompanyId>, principal: Principal, permissions: serde_json::Value) -> Self {
        Self { company_id, principal, permissions }
    }

    pub fn company_id(&self) -> Option<CompanyId> {
        self.company_id
    }

    /// The company this request acts for; a master admin without one gets a 400.
    pub fn require_company(&self) -> Result<CompanyId, ApiError> {
        self.company_id
            .ok_or_else(|| ApiError::validation("this route acts on one company; master admins pass ?company_id="))
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self.principal {
            Principal::User { role, .. } => Some(role),
            _ => None,
        }
    }

    pub fn is_master_admin(&self) -> bool {
        self.role() == Some(Role::MasterAdmin)
    }

    /// 403 `master_only` unless the master admin acts: "only the master admin {manages}".
    pub fn require_master_admin(&self, manages: &str) -> Result<(), ApiError> {
        if self.is_master_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("master_only", format!("only the master admin {manages}")))
        }
    }

    /// The value of `app.user_role` for row-level security.
    pub(crate) fn db_role(&self) -> &'static str {
        match &self.principal {
            Principal::User { role, .. } => role.as_str(),
            Principal::ApiKey { .. } => "api_key",
            Principal::Worker => "worker",
            Principal::Customer { .. } => "customer",
        }
    }

    /// A master admin acting on one company (`?company_id=`) narrows to that company; RLS
    /// still lets them through, and repository calls use the narrowed id.
    pub fn acting_for(&self, company: Option<Uuid>) -> TenantCtx {
        match company {
            Some(c) if self.is_master_admin() => {
                let mut ctx = self.clone();
                ctx.company_id = Some(CompanyId::new(c));
                ctx
            }
            _ => self.clone(),
        }
    }

    /// The single permission check. Master admins may do anything; company admins anything in
    /// their company except platform-level company changes; support agents what their
    /// `permissions` grant (conversations and messages by default); API keys what their scopes
    /// grant.
    pub fn authorize(&self, resource: Resource, access: Access) -> Result<(), ApiError> {
        let allowed = match &self.principal {
            Principal::User { role: Role::MasterAdmin, .. } => true,
            Principal::User { role: Role::CompanyAdmin, .. } => {
                !(resource == Resource::Companies && access == Access::Write)
            }
            Principal::User { role: Role::SupportAgent, .. } => {
                matches!(resource, Resource::Conversations | Resource::Messages)
                    || (resource == Resource::Companies && access == Access::Read)
                    || self.granted(resource, access)
            }
            Principal::ApiKey { scopes, .. } => {
                let want = format!("{}:{}", access.as_str(), resource.as_str());
                scopes.contains(&want)
            }
            Principal::Worker => resource != Resource::Companies,
            Principal::Customer { .. } => matches!(resource, Resource::Conversations | Resource::Messages),
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "forbidden",
                format!("missing permission {}:{}", access.as_str(), resource.as_str()),
            ))
        }
    }

    fn granted(&self, resource: Resource, access: Access) -> bool {
        self.permissions.get(resource.as_str()).and_then(|v| v.as_array()).is_some_and(|list| {
            list.iter().any(|a| {
                // "write" implies "read".
                a.as_str() == Some(access.as_str()) || (access == Access::Read && a.as_str() == Some("write"))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(role: Role, perms: serde_json::Value) -> TenantCtx {
        TenantCtx::new(Some(CompanyId::new(Uuid::nil())), Principal::User { user_id: Uuid::nil(), role }, perms)
    }

    #[test]
    fn company_admin_cannot_change_companies() {
        let ctx = user(Role::CompanyAdmin, json!({}));
        assert!(ctx.authorize(Resource::Team, Access::Write).is_ok());
        assert!(ctx.authorize(Resource::Companies, Access::Read).is_ok());
        assert!(ctx.authorize(Resource::Companies, Access::Write).is_err());
    }

    #[test]
    fn support_agent_needs_explicit_grants() {
        let plain = user(Role::SupportAgent, json!({}));
        assert!(plain.authorize(Resource::Conversations, Access::Write).is_ok());
        assert!(plain.authorize(Resource::Team, Access::Read).is_err());
        let granted = user(Role::SupportAgent, json!({"team": ["write"]}));
        assert!(granted.authorize(Resource::Team, Access::Read).is_ok());
        assert!(granted.authorize(Resource::ApiKeys, Access::Read).is_err());
    }

    #[test]
    fn api_key_scopes_are_exact() {
        let ctx = TenantCtx::new(
            Some(CompanyId::new(Uuid::nil())),
            Principal::ApiKey { key_id: Uuid::nil(), scopes: vec!["read:analytics".into()] },
            json!(null),
        );
        assert!(ctx.authorize(Resource::Analytics, Access::Read).is_ok());
        assert!(ctx.authorize(Resource::Analytics, Access::Write).is_err());
        assert!(ctx.authorize(Resource::Team, Access::Read).is_err());
    }
}

//! Typed ids: one newtype over `Uuid` per kind of row, so a handler cannot pass a file's id
//! where an agent's is expected. Each is a bare UUID on the wire (JSON, paths, PostgreSQL).
//!
//! Companies keep [`CompanyId`](crate::tenant::CompanyId), which only auth code may build.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)+) => {$(
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            utoipa::ToSchema,
            postgres_types::ToSql,
            postgres_types::FromSql,
        )]
        #[serde(transparent)]
        #[schema(value_type = uuid::Uuid)]
        #[postgres(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn new(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )+};
}

ids! {
    /// An AI agent's id.
    AgentId;
    /// A knowledge file's id.
    FileId;
    /// A knowledge category's id.
    CategoryId;
    /// A knowledge article's id.
    ArticleId;
    /// A conversation's id.
    ConversationId;
    /// A channel configuration's id.
    ChannelConfigId;
    /// A user's id.
    UserId;
    /// An invitation's id.
    InvitationId;
    /// An API key's id.
    ApiKeyId;
    /// An internal note's id (on a conversation).
    NoteId;
    /// A canned response's id.
    CannedResponseId;
    /// An escalation rule's id.
    EscalationRuleId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bare_uuids() {
        let u = Uuid::new_v4();
        let id = FileId::new(u);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(u.to_string()));
        assert_eq!(serde_json::from_value::<FileId>(serde_json::json!(u.to_string())).unwrap(), id);
        assert!(serde_json::from_value::<FileId>(serde_json::json!("nope")).is_err());
        assert_eq!(id.to_string().parse::<FileId>().unwrap(), id);
        assert_eq!(Uuid::from(id), u);
        assert!(<AgentId as postgres_types::ToSql>::accepts(&postgres_types::Type::UUID));
    }
}

//! `escalation-rules` function. Escalation rules (seed 003): when the AI hands a conversation to
//! a person, for one agent or for every agent of the company.
//!
//! POST|GET /admin/escalation-rules · GET|PATCH|DELETE /admin/escalation-rules/{id}
//!
//! Every customer turn reads the company's active rules that apply to the conversation's agent
//! (`chatapp::chat::escalation::Rule::from_table_row`) and escalates on the highest-priority one
//! that matches. Bodies are checked against exactly what the turn understands, so a stored rule
//! is one that can fire:
//!
//! - `trigger_keywords`: at most 100, each 1-100 characters (trimmed), none twice
//!   (case-insensitively); matched on word boundaries.
//! - `trigger_conditions`: an object of `triggerType` (`keyword`, `sentiment`, `confidence`,
//!   `turns` or `explicit_request`; inferred when absent), `sentimentBelow` (-1 to 1),
//!   `confidenceBelow` (0 to 1), `afterTurns` and `minTurns` (1 to 1000), `explicitRequest`
//!   (boolean), and, with an explicit `triggerType`, its threshold as `below` / `threshold`
//!   (sentiment, confidence) or `after` / `turns` (turns). The turn's snake_case spellings
//!   (`sentiment_below`, `trigger_type`, ...) are accepted and stored under the names above. Any
//!   other key is 400 naming `trigger_conditions.<key>`.
//! - `assignment_logic`: `{"strategy": "round_robin" | "least_busy" | "specific_agent",
//!   "agent_id"}`, the `agent_id` (with `specific_agent` only) an active support agent or admin
//!   of the company. The escalation the rule writes carries it, and the escalation worker
//!   follows it: `least_busy` (the default) gives the conversation to whoever has the fewest,
//!   `round_robin` to whoever was assigned least recently, `specific_agent` to that person
//!   while they are online (to anyone when they are away or offline).
//! - `priority` 1 (low) to 5 (urgent); `agent_id` absent or `null`: every agent of the company,
//!   else an agent of the company (404 otherwise).
//!
//! Support agents need `agents` permissions; another company's rule is 404.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::Core;
use chatapp::audit::{self, AuditEntry};
use chatapp::chat::escalation::Rule;
use chatapp::db::TenantTx;
use chatapp::error::ErrorBody;
use chatapp::ids::EscalationRuleId;
use chatapp::repo::escalation_rules::{self as repo, EscalationRule, RuleFields};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{domain, ApiError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 5000;
const MAX_KEYWORDS: usize = 100;
const MAX_KEYWORD_CHARS: usize = 100;
/// The largest turn count a condition may name.
const MAX_TURNS: i64 = 1000;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<Core> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(create_rule, list_rules)).routes(routes!(
        get_rule,
        update_rule,
        delete_rule
    ))
}

/// A new escalation rule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRuleBody {
    /// 1-255 characters.
    name: String,
    /// At most 5000 characters.
    description: Option<String>,
    /// The agent the rule applies to; absent: every agent of the company.
    agent_id: Option<Uuid>,
    /// At most 100 keywords of 1-100 characters, none twice (case-insensitively).
    trigger_keywords: Option<Vec<String>>,
    /// `{"triggerType", "sentimentBelow", "confidenceBelow", "afterTurns", "minTurns",
    /// "explicitRequest"}` (see the module documentation).
    #[schema(value_type = Option<Object>)]
    trigger_conditions: Option<TriggerConditions>,
    /// `{"strategy": "round_robin" | "least_busy" | "specific_agent", "agent_id"}`.
    #[schema(value_type = Option<Object>)]
    assignment_logic: Option<AssignmentLogic>,
    /// 1 (low) to 5 (urgent); default 1.
    #[schema(minimum = 1, maximum = 5)]
    priority: Option<i64>,
    /// Default true.
    is_active: Option<bool>,
}

/// The fields to change; absent fields are kept, `null` clears `description` and makes the rule
/// company-wide for `agent_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateRuleBody {
    name: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    agent_id: Option<Option<Uuid>>,
    /// Replaces the keywords (`[]` clears them).
    trigger_keywords: Option<Vec<String>>,
    /// Replaces the conditions.
    #[schema(value_type = Option<Object>)]
    trigger_conditions: Option<TriggerConditions>,
    /// Replaces the assignment.
    #[schema(value_type = Option<Object>)]
    assignment_logic: Option<AssignmentLogic>,
    #[schema(minimum = 1, maximum = 5)]
    priority: Option<i64>,
    is_active: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// The rule's `trigger_conditions`: the keys `Rule::from_table_row` and the rule evaluation of
/// `chatapp::chat::escalation` read, under their canonical names (the snake_case ones they also
/// read are aliases).
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TriggerConditions {
    #[serde(default, alias = "trigger_type", alias = "type", skip_serializing_if = "Option::is_none")]
    trigger_type: Option<String>,
    /// Read by the turn, but refused here: keywords are `trigger_keywords`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keywords: Option<Value>,
    #[serde(default, alias = "sentiment_below", skip_serializing_if = "Option::is_none")]
    sentiment_below: Option<f64>,
    #[serde(default, alias = "confidence_below", skip_serializing_if = "Option::is_none")]
    confidence_below: Option<f64>,
    #[serde(default, alias = "after_turns", skip_serializing_if = "Option::is_none")]
    after_turns: Option<i64>,
    #[serde(default, alias = "min_turns", skip_serializing_if = "Option::is_none")]
    min_turns: Option<i64>,
    #[serde(default, alias = "explicit_request", skip_serializing_if = "Option::is_none")]
    explicit_request: Option<bool>,
    /// The threshold of an explicit `sentiment` or `confidence` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<f64>,
    /// The turn count of an explicit `turns` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    turns: Option<i64>,
}

/// The trigger types the turn evaluates, by the names it accepts, as stored.
fn canonical_type(raw: &str) -> Option<&'static str> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "keyword" | "keywords" => Some("keyword"),
        "sentiment" => Some("sentiment"),
        "confidence" | "low_confidence" => Some("confidence"),
        "turns" | "turn_limit" => Some("turns"),
        "explicit_request" | "explicit" => Some("explicit_request"),
        _ => None,
    }
}

/// `value`, when given, in `lo..=hi`; else a 400 naming `trigger_conditions.<name>`.
fn between<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: Option<T>,
    lo: T,
    hi: T,
) -> Result<(), ApiError> {
    match value {
        Some(v) if !(lo..=hi).contains(&v) => {
            Err(ApiError::validation(format!("trigger_conditions.{name}: must be between {lo} and {hi}")))
        }
        _ => Ok(()),
    }
}

impl TriggerConditions {
    /// Every key checked (400 naming `trigger_conditions.<key>`), the trigger type canonical.
    fn validated(mut self) -> Result<Self, ApiError> {
        let kind = match self.trigger_type.take() {
            Some(t) => Some(canonical_type(&t).ok_or_else(|| {
                ApiError::validation(
                    "trigger_conditions.triggerType: must be keyword, sentiment, confidence, turns or explicit_request",
                )
            })?),
            None => None,
        };
        self.trigger_type = kind.map(str::to_string);
        if self.keywords.is_some() {
            return Err(ApiError::validation("trigger_conditions.keywords: give the keywords as trigger_keywords"));
        }
        between("sentimentBelow", self.sentiment_below, -1.0, 1.0)?;
        between("confidenceBelow", self.confidence_below, 0.0, 1.0)?;
        between("afterTurns", self.after_turns, 1, MAX_TURNS)?;
        between("minTurns", self.min_turns, 1, MAX_TURNS)?;
        for (name, value) in [("below", self.below), ("threshold", self.threshold)] {
            match (kind, value) {
                (_, None) => {}
                (Some("sentiment"), v) => between(name, v, -1.0, 1.0)?,
                (Some("confidence"), v) => between(name, v, 0.0, 1.0)?,
                _ => {
                    return Err(ApiError::validation(format!(
                        "trigger_conditions.{name}: only with triggerType sentiment or confidence \
                         (else use sentimentBelow or confidenceBelow)"
                    )))
                }
            }
        }
        for (name, value) in [("after", self.after), ("turns", self.turns)] {
            match (kind, value) {
                (_, None) => {}
                (Some("turns"), v) => between(name, v, 1, MAX_TURNS)?,
                _ => {
                    return Err(ApiError::validation(format!(
                        "trigger_conditions.{name}: only with triggerType turns (else use afterTurns)"
                    )))
                }
            }
        }
        Ok(self)
    }
}

/// Who a rule's escalations go to.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct AssignmentLogic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strategy: Option<Strategy>,
    /// With `specific_agent`: the support agent (a user of the company).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent_id: Option<Uuid>,
}

#[derive(Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Strategy {
    RoundRobin,
    LeastBusy,
    SpecificAgent,
}

impl AssignmentLogic {
    /// `agent_id` exactly with `specific_agent`.
    fn check(&self) -> Result<(), ApiError> {
        match (self.strategy, self.agent_id) {
            (Some(Strategy::SpecificAgent), None) => Err(ApiError::validation(
                "assignment_logic.agent_id: the specific_agent strategy needs the support agent's id",
            )),
            (Some(Strategy::SpecificAgent), Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => {
                Err(ApiError::validation("assignment_logic.agent_id: only with the specific_agent strategy"))
            }
        }
    }

    /// The named support agent is an active support agent or admin of the company.
    async fn require_assignee(&self, tx: &TenantTx, company: Uuid) -> Result<(), ApiError> {
        let Some(user) = self.agent_id else { return Ok(()) };
        if chatapp::repo::inbox::conversations::assignable(tx, company, user).await? {
            Ok(())
        } else {
            Err(ApiError::validation(
                "assignment_logic.agent_id: must be an active support agent or admin of the company",
            ))
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// At most 100 keywords, each trimmed, 1-100 characters, none twice (case-insensitively).
fn keywords(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_KEYWORDS {
        return Err(ApiError::validation(format!("trigger_keywords must have at most {MAX_KEYWORDS} keywords")));
    }
    let mut seen = HashSet::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let k = domain::text(&format!("trigger_keywords[{i}]"), raw, MAX_KEYWORD_CHARS)?;
        if !seen.insert(k.to_lowercase()) {
            return Err(ApiError::validation(format!("trigger_keywords[{i}]: \"{k}\" is in the list twice")));
        }
        out.push(k);
    }
    Ok(out)
}

fn priority(level: i64) -> Result<i32, ApiError> {
    match i32::try_from(level) {
        Ok(p) if (1..=5).contains(&p) => Ok(p),
        _ => Err(ApiError::validation("priority must be between 1 (low) and 5 (urgent)")),
    }
}

/// The rule can fire: the turn reads it (`Rule::from_table_row`, as it reads every stored rule)
/// as a trigger type it evaluates, with what that type needs, and keywords only when it matches
/// on them.
fn check_fires(keywords: &[String], conditions: &Value) -> Result<(), ApiError> {
    let rule = Rule::from_table_row(Uuid::nil(), "", keywords, conditions, 1, true);
    let has = |keys: &[&str]| keys.iter().any(|k| conditions.get(*k).is_some_and(|v| !v.is_null()));
    let kind = canonical_type(&rule.trigger_type);
    let missing = match kind {
        None if rule.trigger_type.trim().is_empty() => Some(
            "trigger_keywords: a rule needs keywords or a condition (trigger_conditions.triggerType, \
             sentimentBelow, confidenceBelow, afterTurns or explicitRequest: true)",
        ),
        None => {
            Some("trigger_conditions.triggerType: must be keyword, sentiment, confidence, turns or explicit_request")
        }
        Some("keyword") if rule.conditions.get("keywords").is_none() => {
            Some("trigger_keywords: a keyword rule needs at least one keyword")
        }
        Some("sentiment") if !has(&["below", "sentimentBelow", "sentiment_below", "threshold"]) => {
            Some("trigger_conditions.sentimentBelow: a sentiment rule needs its threshold")
        }
        Some("confidence") if !has(&["below", "confidenceBelow", "confidence_below", "threshold"]) => {
            Some("trigger_conditions.confidenceBelow: a confidence rule needs its threshold")
        }
        Some("turns") if !has(&["after", "afterTurns", "after_turns", "turns"]) => {
            Some("trigger_conditions.afterTurns: a turns rule needs its turn count")
        }
        _ => None,
    };
    if let Some(message) = missing {
        return Err(ApiError::validation(message));
    }
    if !keywords.is_empty() && kind != Some("keyword") {
        return Err(ApiError::validation(
            "trigger_keywords: only a keyword rule matches on keywords (leave triggerType out or set it to keyword)",
        ));
    }
    Ok(())
}

async fn require_agent(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<(), ApiError> {
    chatapp::repo::chat::agent(tx, company, agent).await?.map(|_| ()).ok_or(ApiError::NotFound)
}

fn audit_entry<'a>(
    action: &'a str,
    id: Uuid,
    before: Option<&EscalationRule>,
    after: Option<&EscalationRule>,
) -> AuditEntry<'a> {
    AuditEntry::change(action, "escalation_rule", id, before, after)
}

/// Filters of the rule list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RuleListQuery {
    /// Only this agent's rules (the company-wide ones are those without an agent).
    #[param(value_type = Option<Uuid>)]
    agent_id: Option<String>,
    /// `true`: only active rules; `false`: only inactive ones.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
}

/// Create an escalation rule, for one agent or for every agent of the company.
#[utoipa::path(post, path = "/admin/escalation-rules", tag = "escalation_rules", security(("bearer" = [])),
    params(CompanyParam), request_body = CreateRuleBody,
    responses(
        (status = 201, description = "The created rule", body = EscalationRule),
        (status = 404, description = "No such agent in the company", body = ErrorBody)))]
async fn create_rule(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateRuleBody>,
) -> Result<(StatusCode, Json<EscalationRule>), ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let name = domain::text("name", &body.name, MAX_NAME)?;
    let description = domain::optional_text("description", body.description.as_deref(), MAX_DESCRIPTION)?;
    let trigger_keywords = keywords(body.trigger_keywords.unwrap_or_default())?;
    let conditions = to_json(&body.trigger_conditions.unwrap_or_default().validated()?)?;
    let assignment = body.assignment_logic.unwrap_or_default();
    assignment.check()?;
    let assignment_json = to_json(&assignment)?;
    let priority = priority(body.priority.unwrap_or(1))?;
    check_fires(&trigger_keywords, &conditions)?;
    let (agent_id, is_active, created_by) = (body.agent_id, body.is_active.unwrap_or(true), ctx.user_id());
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        if let Some(agent) = agent_id {
            require_agent(&tx, company, agent).await?;
        }
        assignment.require_assignee(&tx, company).await?;
        let fields = RuleFields {
            agent_id,
            name: &name,
            description: description.as_deref(),
            trigger_keywords: &trigger_keywords,
            trigger_conditions: &conditions,
            assignment_logic: &assignment_json,
            priority,
            is_active,
        };
        let rule = repo::insert(&tx, company, created_by, &fields).await?;
        audit::record(&tx, audit_entry("escalation_rule.create", rule.id, None, Some(&rule)), &meta).await?;
        Ok::<_, ApiError>(rule)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(created).await?)))
}

/// List the company's escalation rules, highest priority first.
#[utoipa::path(get, path = "/admin/escalation-rules", tag = "escalation_rules", security(("bearer" = [])),
    params(RuleListQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of escalation rules", body = Paged<EscalationRule>)))]
async fn list_rules(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<RuleListQuery>,
) -> Result<Json<Paged<EscalationRule>>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let agent = match q.agent_id.as_deref() {
        Some(a) => Some(Uuid::parse_str(a).map_err(|_| ApiError::validation("agent_id must be a UUID"))?),
        None => None,
    };
    let active = chatapp::web::bool_param("active", q.active.as_deref())?;
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::list(&tx, company, agent, active, page.limit, page.offset).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One escalation rule.
#[utoipa::path(get, path = "/admin/escalation-rules/{id}", tag = "escalation_rules", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Escalation rule id"), CompanyParam),
    responses((status = 200, description = "The rule", body = EscalationRule),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn get_rule(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<EscalationRuleId>,
) -> Result<Json<EscalationRule>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let found = repo::get(&tx, company, id.as_uuid()).await.map_err(ApiError::from);
    tx.finish(found).await?.map(Json).ok_or(ApiError::NotFound)
}

/// Change an escalation rule.
#[utoipa::path(patch, path = "/admin/escalation-rules/{id}", tag = "escalation_rules", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Escalation rule id"), CompanyParam), request_body = UpdateRuleBody,
    responses((status = 200, description = "The rule", body = EscalationRule),
        (status = 404, description = "Not found", body = ErrorBody)))]
async fn update_rule(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<EscalationRuleId>,
    JsonBody(body): JsonBody<UpdateRuleBody>,
) -> Result<Json<EscalationRule>, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let id = id.as_uuid();
    let name = body.name.as_deref().map(|n| domain::text("name", n, MAX_NAME)).transpose()?;
    let description = match body.description {
        Some(Some(d)) => Some(Some(domain::text("description", &d, MAX_DESCRIPTION)?)),
        other => other,
    };
    let trigger_keywords = body.trigger_keywords.map(keywords).transpose()?;
    let conditions = match body.trigger_conditions {
        Some(c) => Some(to_json(&c.validated()?)?),
        None => None,
    };
    let assignment = body.assignment_logic;
    if let Some(a) = &assignment {
        a.check()?;
    }
    let priority = body.priority.map(priority).transpose()?;
    let (agent_change, is_active) = (body.agent_id, body.is_active);
    let tx = deps.db.begin(&ctx).await?;
    let updated = async {
        let before = repo::lock(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        let agent_id = match agent_change {
            Some(Some(agent)) => {
                require_agent(&tx, company, agent).await?;
                Some(agent)
            }
            Some(None) => None,
            None => before.agent_id,
        };
        let keywords = trigger_keywords.clone().unwrap_or_else(|| before.trigger_keywords.clone());
        let conditions = conditions.clone().unwrap_or_else(|| before.trigger_conditions.clone());
        check_fires(&keywords, &conditions)?;
        let assignment_json = match &assignment {
            Some(a) => {
                a.require_assignee(&tx, company).await?;
                to_json(a)?
            }
            None => before.assignment_logic.clone(),
        };
        let fields = RuleFields {
            agent_id,
            name: name.as_deref().unwrap_or(&before.name),
            description: match &description {
                Some(d) => d.as_deref(),
                None => before.description.as_deref(),
            },
            trigger_keywords: &keywords,
            trigger_conditions: &conditions,
            assignment_logic: &assignment_json,
            priority: priority.unwrap_or(before.priority),
            is_active: is_active.unwrap_or(before.is_active),
        };
        let after = repo::update(&tx, company, id, &fields).await?.ok_or(ApiError::NotFound)?;
        audit::record(&tx, audit_entry("escalation_rule.update", id, Some(&before), Some(&after)), &meta).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(updated).await?))
}

/// Delete an escalation rule (escalations it caused stay).
#[utoipa::path(delete, path = "/admin/escalation-rules/{id}", tag = "escalation_rules", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Escalation rule id"), CompanyParam),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorBody)))]
async fn delete_rule(
    State(deps): State<Core>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    IdPath(id): IdPath<EscalationRuleId>,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Agents, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let id = id.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let deleted = async {
        let before = repo::lock(&tx, company, id).await?.ok_or(ApiError::NotFound)?;
        repo::delete(&tx, company, id).await?;
        audit::record(&tx, audit_entry("escalation_rule.delete", id, Some(&before), None), &meta).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(v: Value) -> Result<Value, ApiError> {
        to_json(&chatapp::web::from_value::<TriggerConditions>("trigger_conditions", v)?.validated()?)
    }

    #[test]
    fn conditions_are_the_keys_the_turn_reads() {
        assert_eq!(
            conditions(json!({"sentiment_below": -0.4, "min_turns": 2})).unwrap(),
            json!({"sentimentBelow": -0.4, "minTurns": 2})
        );
        assert_eq!(
            conditions(json!({"type": "Low_Confidence", "below": 0.3})).unwrap(),
            json!({"triggerType": "confidence", "below": 0.3})
        );
        let e = conditions(json!({"sentimentBelow": -2})).unwrap_err().to_string();
        assert!(e.starts_with("trigger_conditions.sentimentBelow"), "{e}");
        let e = conditions(json!({"below": 0.2})).unwrap_err().to_string();
        assert!(e.starts_with("trigger_conditions.below"), "{e}");
        let e = conditions(json!({"triggerType": "moon"})).unwrap_err().to_string();
        assert!(e.starts_with("trigger_conditions.triggerType"), "{e}");
        assert!(conditions(json!({"keywords": ["a"]})).is_err());
        assert!(chatapp::web::from_value::<TriggerConditions>(
            "trigger_conditions",
            json!({"sentimentTreshold": -0.5})
        )
        .is_err());
    }

    #[test]
    fn a_stored_rule_can_fire() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_fires(&k(&["lawyer"]), &json!({})).is_ok());
        assert!(check_fires(&k(&["lawyer"]), &json!({"sentimentBelow": -0.3})).is_ok(), "narrowed");
        assert!(check_fires(&[], &json!({"sentimentBelow": -0.3})).is_ok());
        assert!(check_fires(&[], &json!({"explicitRequest": true})).is_ok());
        assert!(check_fires(&[], &json!({})).is_err(), "never fires");
        assert!(check_fires(&[], &json!({"triggerType": "keyword"})).is_err());
        assert!(check_fires(&[], &json!({"triggerType": "turns"})).is_err());
        assert!(check_fires(&[], &json!({"triggerType": "turns", "after": 3})).is_ok());
        assert!(check_fires(&k(&["x"]), &json!({"triggerType": "sentiment", "below": -0.2})).is_err());
        assert!(keywords(k(&["Refund", " refund "])).is_err(), "case-insensitive duplicates");
        assert_eq!(keywords(k(&["  lawyer "])).unwrap(), ["lawyer"]);
        assert!(priority(6).is_err() && priority(0).is_err() && priority(5).is_ok());
    }
}

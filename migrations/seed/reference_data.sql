-- Reference data: subscription plans, default agent packages, AI model catalog.
-- Idempotent: safe to run any number of times (run as the owner role).
--   plans / packages: ON CONFLICT (slug) DO NOTHING  -> master admin edits are preserved
--   model catalog:    ON CONFLICT (slug) DO UPDATE   -> prices follow this file

-- ---------------------------------------------------------------------------
-- Subscription plans (prices in USD per month; maxFileSize in bytes; apiRateLimit req/min)
-- ---------------------------------------------------------------------------
INSERT INTO chatapp_subscription_plans
    (name, slug, description, base_price, setup_fee, currency, billing_cycle, limits, features, is_active, is_public)
VALUES
    ('Free', 'free', 'Try the platform with a single web agent.',
     0.00, 0, 'USD', 'monthly',
     '{"messagesPerMonth": 1000, "agentCount": 1, "supportSeats": 1, "storageGb": 1,
       "maxFileSize": 5242880, "apiRateLimit": 20, "knowledgeCategories": 3}'::jsonb,
     '["web_widget", "knowledge_base", "analytics_basic"]'::jsonb, true, true),
    ('Starter', 'starter', 'For small teams getting started with AI support.',
     29.00, 0, 'USD', 'monthly',
     '{"messagesPerMonth": 10000, "agentCount": 3, "supportSeats": 3, "storageGb": 5,
       "maxFileSize": 10485760, "apiRateLimit": 60, "knowledgeCategories": 10}'::jsonb,
     '["web_widget", "knowledge_base", "analytics_basic", "email", "human_handover", "canned_responses"]'::jsonb,
     true, true),
    ('Professional', 'professional', 'Multi-channel AI support with human handover and API access.',
     99.00, 0, 'USD', 'monthly',
     '{"messagesPerMonth": 50000, "agentCount": 10, "supportSeats": 15, "storageGb": 25,
       "maxFileSize": 52428800, "apiRateLimit": 300, "knowledgeCategories": 50}'::jsonb,
     '["web_widget", "knowledge_base", "analytics_basic", "email", "human_handover", "canned_responses",
       "whatsapp", "telegram", "slack", "analytics_advanced", "api_access", "webhooks", "custom_branding"]'::jsonb,
     true, true),
    ('Enterprise', 'enterprise', 'Unlimited-scale deployments, custom domain, SSO and dedicated support.',
     499.00, 0, 'USD', 'monthly',
     '{"messagesPerMonth": 10000000, "agentCount": 1000, "supportSeats": 10000, "storageGb": 1000,
       "maxFileSize": 524288000, "apiRateLimit": 5000, "knowledgeCategories": 10000}'::jsonb,
     '["web_widget", "knowledge_base", "analytics_basic", "email", "human_handover", "canned_responses",
       "whatsapp", "telegram", "slack", "analytics_advanced", "api_access", "webhooks", "custom_branding",
       "teams", "messenger", "instagram", "voice", "custom_domain", "sso", "audit_log_export",
       "priority_support"]'::jsonb,
     true, true)
ON CONFLICT (slug) DO NOTHING;

-- ---------------------------------------------------------------------------
-- Default agent packages (built into the Rust binary; package_url uses a builtin:// scheme)
-- ---------------------------------------------------------------------------
INSERT INTO chatapp_agent_packages
    (name, slug, description, version, package_url, package_hash, entry_point,
     capabilities, default_config, author, is_active, is_default, published_at)
VALUES
    ('Support Agent (RAG)', 'support-rag',
     'Customer-support agent answering from the company knowledge base with human handover.',
     '1.0.0', 'builtin://support-rag', encode(sha256('builtin://support-rag@1.0.0'::bytea), 'hex'), 'builtin',
     '["rag", "tools"]'::jsonb,
     '{"llmConfig": {"model": "claude-3-5-sonnet", "temperature": 0.7, "maxTokens": 4096},
       "ragConfig": {"chunkSize": 500, "overlapSize": 50, "relevanceThreshold": 0.7, "maxResults": 5},
       "enabledTools": ["rag_search", "request_human_handover"]}'::jsonb,
     'chatapp', true, true, now()),
    ('FAQ Bot (basic)', 'faq-basic',
     'Low-cost FAQ bot: short answers strictly from the knowledge base, no tools besides search.',
     '1.0.0', 'builtin://faq-basic', encode(sha256('builtin://faq-basic@1.0.0'::bytea), 'hex'), 'builtin',
     '["rag"]'::jsonb,
     '{"llmConfig": {"model": "gpt-4o-mini", "temperature": 0.2, "maxTokens": 1024},
       "ragConfig": {"chunkSize": 300, "overlapSize": 30, "relevanceThreshold": 0.75, "maxResults": 3},
       "enabledTools": ["rag_search"]}'::jsonb,
     'chatapp', true, false, now())
ON CONFLICT (slug) DO NOTHING;

-- ---------------------------------------------------------------------------
-- AI model catalog (USD per 1M tokens; 'extractive' = offline, no LLM call)
-- ---------------------------------------------------------------------------
INSERT INTO chatapp_ai_models
    (slug, name, provider, provider_model, model_type, context_window, max_output_tokens,
     input_price_per_1m, output_price_per_1m, configuration, is_active)
VALUES
    ('gpt-4o', 'GPT-4o', 'openai', 'gpt-4o', 'chat', 128000, 16384, 2.5000, 10.0000, '{}'::jsonb, true),
    ('gpt-4o-mini', 'GPT-4o mini', 'openai', 'gpt-4o-mini', 'chat', 128000, 16384, 0.1500, 0.6000, '{}'::jsonb, true),
    ('text-embedding-3-small', 'OpenAI text-embedding-3-small', 'openai', 'text-embedding-3-small',
     'embedding', 8191, NULL, 0.0200, 0.0000, '{"dimensions": 1536}'::jsonb, true),
    ('claude-3-5-sonnet', 'Claude 3.5 Sonnet', 'anthropic', 'claude-3-5-sonnet-latest', 'chat', 200000, 8192,
     3.0000, 15.0000, '{}'::jsonb, true),
    ('claude-3-5-haiku', 'Claude 3.5 Haiku', 'anthropic', 'claude-3-5-haiku-latest', 'chat', 200000, 8192,
     0.8000, 4.0000, '{}'::jsonb, true),
    ('extractive', 'Extractive (offline)', 'local', 'extractive', 'extractive', NULL, NULL,
     0.0000, 0.0000, '{"description": "returns the best-matching knowledge passages verbatim; no LLM"}'::jsonb, true)
ON CONFLICT (slug) DO UPDATE SET
    name                = EXCLUDED.name,
    provider            = EXCLUDED.provider,
    provider_model      = EXCLUDED.provider_model,
    model_type          = EXCLUDED.model_type,
    context_window      = EXCLUDED.context_window,
    max_output_tokens   = EXCLUDED.max_output_tokens,
    input_price_per_1m  = EXCLUDED.input_price_per_1m,
    output_price_per_1m = EXCLUDED.output_price_per_1m,
    configuration       = EXCLUDED.configuration
WHERE (chatapp_ai_models.name, chatapp_ai_models.provider, chatapp_ai_models.provider_model,
       chatapp_ai_models.model_type, chatapp_ai_models.context_window, chatapp_ai_models.max_output_tokens,
       chatapp_ai_models.input_price_per_1m, chatapp_ai_models.output_price_per_1m,
       chatapp_ai_models.configuration)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.provider, EXCLUDED.provider_model,
       EXCLUDED.model_type, EXCLUDED.context_window, EXCLUDED.max_output_tokens,
       EXCLUDED.input_price_per_1m, EXCLUDED.output_price_per_1m,
       EXCLUDED.configuration);

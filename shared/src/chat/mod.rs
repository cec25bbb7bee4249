pub mod company_keys;
pub mod escalation;
pub mod hours;
pub mod model;
pub mod sentiment;
pub mod summary;
pub mod tools;
pub mod turn;

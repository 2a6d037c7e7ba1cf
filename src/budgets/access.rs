//! Who sees and sets which budget.
//!
//! * An admin sees and sets every budget.
//! * A team's current lead sees that team's budgets in full and sets or
//!   removes budgets on the team.
//! * A member sees the budgets that cover them: a budget on them (in
//!   full), their own share of an each-member budget (only theirs), and
//!   the pooled budgets their usage counts towards (everyone's, their
//!   current team's, a model's) as a percentage and a reset time only —
//!   the pooled amounts are other people's usage.
//!
//! Alerts follow the same rule ([`alert_shown`]).

use super::store::{Budget, BudgetScope};
use crate::alerts::AlertRow;
use crate::model::{TeamId, User, UserId};

/// What a viewer may see of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// Every figure, every member.
    Full,
    /// Their own standing only (an each-member budget).
    Own,
    /// The percentage and the reset, no amounts (a pooled budget).
    Share,
    Hidden,
}

/// Who is looking: the user, the teams they lead now, the team they are
/// in now.
#[derive(Debug, Clone)]
pub struct Viewer<'a> {
    pub user: &'a User,
    pub leads: &'a [TeamId],
    pub team: Option<TeamId>,
}

impl Viewer<'_> {
    pub fn sight(&self, budget: &Budget) -> Sight {
        if self.user.is_admin() {
            return Sight::Full;
        }
        match &budget.scope {
            BudgetScope::Team { id, .. } if self.leads.contains(id) => Sight::Full,
            BudgetScope::Team { id, .. } if self.team == Some(*id) => Sight::Share,
            BudgetScope::Team { .. } => Sight::Hidden,
            BudgetScope::User { id, .. } if *id == self.user.id => Sight::Full,
            BudgetScope::User { .. } => Sight::Hidden,
            BudgetScope::EachMember => Sight::Own,
            BudgetScope::Everyone | BudgetScope::Model(_) => Sight::Share,
        }
    }

    /// Whether the viewer may set or remove a budget on `scope`.
    pub fn may_manage(&self, scope: &BudgetScope) -> bool {
        self.user.is_admin()
            || matches!(scope, BudgetScope::Team { id, .. } if self.leads.contains(id))
    }

    /// Whether an alert (of a budget that is still there, or not) is shown
    /// to the viewer, and with its amounts.
    pub fn alert_shown(&self, alert: &AlertRow, budget: Option<&Budget>) -> Sight {
        if self.user.is_admin() {
            return Sight::Full;
        }
        if alert.user == Some(self.user.id) {
            return Sight::Full;
        }
        match budget.map(|b| self.sight(b)) {
            Some(Sight::Full) => Sight::Full,
            // Someone else's share of an each-member budget.
            Some(Sight::Own) | None | Some(Sight::Hidden) => Sight::Hidden,
            Some(Sight::Share) if alert.user.is_none() => Sight::Share,
            Some(Sight::Share) => Sight::Hidden,
        }
    }

    pub fn id(&self) -> UserId {
        self.user.id
    }
}

//! The fleet file's round trips and the edit between two models.

use proptest::prelude::*;

use super::*;
use crate::model::TokenSource;

/// The tokens `diff_ops` wants new nodes to get, in order (as the store hands them out).
struct Given(std::vec::IntoIter<Option<String>>);
impl TokenSource for Given {
    fn token(&mut self) -> String {
        self.0.next().flatten().unwrap_or_default()
    }
}

/// `old` edited by `diff_ops(old, new)`, through `Model::apply` and `Model::validate` as an
/// edit goes.
fn replay(old: &Model, new: &Model) -> Result<Model, TestCaseError> {
    let (ops, tokens) = diff_ops(old, new);
    let mut m = old.clone();
    let mut tokens = Given(tokens.into_iter());
    for op in &ops {
        m.apply(op, &mut tokens)
            .map_err(|e| TestCaseError::fail(format!("{op:?}: {e}\nops: {ops:#?}")))?;
    }
    m.validate()
        .map_err(|e| TestCaseError::fail(format!("{e}\nops: {ops:#?}")))?;
    Ok(m)
}

/// A task that goes, through which the old model had a path between two tasks that the new
/// model includes the other way round: it must be removed before that include is added, or the
/// include is refused as a cycle (found by `diff_ops_turn_a_into_b`).
#[test]
fn a_task_that_goes_is_removed_before_includes_that_would_cycle_through_it() {
    let tasks = |names: &[&str], includes: &[(&str, &str)]| {
        let mut m = Model::default();
        for n in names {
            m.tasks.insert(n.to_string(), Task::new(n));
        }
        for (t, s) in includes {
            let task = m.tasks.get_mut(*t).expect("task");
            task.includes.insert(s.to_string());
        }
        m
    };
    let a = tasks(&["x", "gone", "y"], &[("x", "gone"), ("gone", "y")]);
    let b = tasks(&["x", "y"], &[("y", "x")]);
    assert_eq!(replay(&a, &b).expect("replay"), b);
}

//! The process's exit codes, one type (docs/contract.md §2): what `main` returns for every
//! command, and what a run's report maps to.

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: every target swept cleanly (`run`: a clean shutdown).
    Clean,
    /// 1: a target failed, an upload stayed unverified, an export failed, or the drain ran out.
    Failed,
    /// 2: invalid configuration or usage; nothing was contacted.
    Usage,
    /// 3: a shutdown signal cut `once`/`plan` short; the report says `interrupted`: run again.
    Interrupted,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Interrupted => 3,
        }
    }

    /// The worse of two outcomes: a failure needs a person, so it wins over an interruption.
    pub fn worst(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Clean => 0,
            Exit::Interrupted => 1,
            Exit::Failed => 2,
            Exit::Usage => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_outranks_an_interruption() {
        assert_eq!(Exit::Interrupted.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.worst(Exit::Interrupted), Exit::Failed);
        assert_eq!(Exit::Clean.worst(Exit::Interrupted), Exit::Interrupted);
        assert_eq!(Exit::Clean.worst(Exit::Clean), Exit::Clean);
        assert_eq!(
            [Exit::Clean, Exit::Failed, Exit::Usage, Exit::Interrupted].map(Exit::code),
            [0, 1, 2, 3]
        );
    }
}

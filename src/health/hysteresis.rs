//! Rise/fall hysteresis: a check changes state only after `rise`
//! consecutive successes (down -> up) or `fall` consecutive failures
//! (up -> down), so one lost probe does not flap a server. Sans-IO: no
//! clock, no runtime.

#[derive(Debug, Clone)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results against the current state: successes while down,
    /// failures while up. A result agreeing with the state resets it.
    against: u32,
}

impl Hysteresis {
    /// `rise` and `fall` below 1 are treated as 1 (config validation rejects
    /// them before they get here).
    pub fn new(rise: u32, fall: u32, initial_up: bool) -> Self {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            up: initial_up,
            against: 0,
        }
    }

    /// Feed one probe result. Returns `Some(new_state)` when it changes.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok == self.up {
            self.against = 0;
            return None;
        }
        self.against += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.against >= needed {
            self.up = ok;
            self.against = 0;
            Some(ok)
        } else {
            None
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_state_is_kept_until_enough_results() {
        assert!(Hysteresis::new(2, 3, true).is_up());
        assert!(!Hysteresis::new(2, 3, false).is_up());
    }

    #[test]
    fn rises_after_rise_successes() {
        let mut h = Hysteresis::new(3, 2, false);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), None);
        assert!(!h.is_up());
        assert_eq!(h.record(true), Some(true));
        assert!(h.is_up());
        // Further successes are not transitions.
        assert_eq!(h.record(true), None);
    }

    #[test]
    fn falls_after_fall_failures() {
        let mut h = Hysteresis::new(2, 3, true);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert!(h.is_up());
        assert_eq!(h.record(false), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.record(false), None);
    }

    #[test]
    fn agreeing_result_resets_the_opposite_counter() {
        let mut h = Hysteresis::new(2, 2, true);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None); // resets the failure count
        assert_eq!(h.record(false), None);
        assert!(h.is_up());
        assert_eq!(h.record(false), Some(false));

        // Down now: one success then a failure starts the rise count over.
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert!(!h.is_up());
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_result() {
        let mut h = Hysteresis::new(1, 1, false);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), Some(false));
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn zero_is_treated_as_one() {
        let mut h = Hysteresis::new(0, 0, false);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), Some(false));
    }
}

package fakests

import (
	"fmt"
	"sync"
	"time"
)

// Fault is what the fake does to AssumeRole calls instead of answering
// them at once: wait Delay, then answer the error Code ("" answers with
// credentials), for the next Times calls (0: until changed). The zero Fault
// is none.
type Fault struct {
	Code  Code
	Delay time.Duration
	Times int
}

func (f Fault) validate() error {
	switch {
	case f.Code != "" && !faultCodes[f.Code]:
		return fmt.Errorf("fault code %q: want %s, %s, %s or %s", f.Code, Throttling, AccessDenied, InternalFailure, ServiceUnavailable)
	case f.Delay < 0 || f.Times < 0:
		return fmt.Errorf("fault %+v: delay and times must not be negative", f)
	}
	return nil
}

// faultSet holds the fault for every role and those for single roles,
// keyed by ARN or by name; a role's own fault wins over the global one.
type faultSet struct {
	mu     sync.Mutex
	global *activeFault
	roles  map[string]*activeFault
}

// activeFault is a Fault and, when it has Times, how many calls it still
// applies to.
type activeFault struct {
	Fault
	left int
}

// set installs f for role ("" = every role); the zero Fault removes it.
func (s *faultSet) set(role string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a *activeFault
	if f != (Fault{}) {
		a = &activeFault{Fault: f, left: f.Times}
	}
	if role == "" {
		s.global = a
		return
	}
	if s.roles == nil {
		s.roles = map[string]*activeFault{}
	}
	if a == nil {
		delete(s.roles, role)
		return
	}
	s.roles[role] = a
}

func (s *faultSet) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.global, s.roles = nil, nil
}

// take returns the fault that applies to a call for roleARN (its ARN,
// then its name, then every role's) and counts the call against its Times.
func (s *faultSet) take(roleARN string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range []string{roleARN, roleName(roleARN)} {
		if a, ok := s.roles[key]; ok {
			if a.use() {
				delete(s.roles, key)
			}
			return a.Fault
		}
	}
	if a := s.global; a != nil {
		if a.use() {
			s.global = nil
		}
		return a.Fault
	}
	return Fault{}
}

// use counts one call; true when that was the fault's last.
func (a *activeFault) use() bool {
	if a.Times == 0 {
		return false
	}
	a.left--
	return a.left == 0
}

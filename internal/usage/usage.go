// Package usage keeps, per caller (uid, user, comm, exe, container and
// what its runtime says of it), how
// many IMDSv1 and IMDSv2 requests it made and when it was last seen: the
// per-process view of what the instance's MetadataNoToken metric counts.
// When it shows no IMDSv1 caller, the instance can require IMDSv2.
package usage

import (
	"cmp"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
)

// MaxCallers bounds the table; past it the caller seen longest ago goes.
const MaxCallers = 4096

// Key identifies a caller across connections and restarts of its process.
type Key struct {
	UIDKnown  bool       `json:"uid_known"`
	UID       uint32     `json:"uid"`
	User      string     `json:"user"`
	Comm      string     `json:"comm"`
	Exe       string     `json:"exe"`
	Container string     `json:"container"`
	Source    netip.Addr `json:"source"` // for containers and unattested callers ("" otherwise)
	// What the container's runtime says, when it answered.
	Runtime       string `json:"runtime,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image,omitempty"`
	PodNamespace  string `json:"pod_namespace,omitempty"`
	PodName       string `json:"pod_name,omitempty"`
}

// Row is one caller's usage.
type Row struct {
	Key
	PID      int       `json:"pid"` // the last one seen
	V1       uint64    `json:"v1"`
	V2       uint64    `json:"v2"`
	LastSeen time.Time `json:"last_seen"`
	LastV1   time.Time `json:"last_v1,omitzero"`
}

// Table is the usage table; it is safe for concurrent use.
type Table struct {
	mu    sync.Mutex
	rows  map[Key]*Row
	since time.Time
}

// New returns an empty table.
func New() *Table {
	return &Table{rows: map[Key]*Row{}, since: time.Now()}
}

// Record counts ev when it is a metadata read (v1 or v2) or a token PUT
// (which counts as v2: the caller speaks IMDSv2).
func (t *Table) Record(ev *audit.Event) {
	v1 := ev.Version == audit.V1
	if !v1 && ev.Version != audit.V2 && !(ev.Token && ev.Method == http.MethodPut) {
		return
	}
	k := keyOf(ev)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rows[k]
	if r == nil {
		t.evict()
		r = &Row{Key: k}
		t.rows[k] = r
	}
	r.PID, r.LastSeen = ev.Caller.PID, now
	if v1 {
		r.V1++
		r.LastV1 = now
	} else {
		r.V2++
	}
}

func keyOf(ev *audit.Event) Key {
	c := ev.Caller
	k := Key{UIDKnown: c.UIDKnown, User: c.User, Comm: c.Comm, Exe: c.Exe, Container: c.Container}
	if c.UIDKnown {
		k.UID = c.UID
	}
	if !c.UIDKnown || c.Container != "" || c.Class == identity.Container {
		k.Source = c.Remote.Addr()
	}
	if w := c.Workload; w != nil {
		k.Runtime, k.ContainerName, k.Image = w.Runtime, w.Name, w.Image
		if w.Pod != nil {
			k.PodNamespace, k.PodName = w.Pod.Namespace, w.Pod.Name
		}
	}
	return k
}

// evict drops the caller seen longest ago when the table is full; t.mu is held.
func (t *Table) evict() {
	if len(t.rows) < MaxCallers {
		return
	}
	var oldest *Row
	for _, r := range t.rows {
		if oldest == nil || r.LastSeen.Before(oldest.LastSeen) {
			oldest = r
		}
	}
	delete(t.rows, oldest.Key)
}

// Snapshot is the table at one moment.
type Snapshot struct {
	Since   time.Time `json:"since"` // when counting started (daemon start)
	Callers []Row     `json:"callers"`
}

// Snapshot returns the rows, IMDSv1 users first (most v1 requests first).
func (t *Table) Snapshot() Snapshot {
	t.mu.Lock()
	rows := make([]Row, 0, len(t.rows))
	for _, r := range t.rows {
		rows = append(rows, *r)
	}
	t.mu.Unlock()
	slices.SortFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(b.V1, a.V1); c != 0 {
			return c
		}
		return b.LastSeen.Compare(a.LastSeen)
	})
	return Snapshot{Since: t.since, Callers: rows}
}

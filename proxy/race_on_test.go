//go:build race

package proxy

// raceEnabled: the race detector instruments every function, which makes
// frames larger than a normal build's (TestConnectionStacksStaySmall).
const raceEnabled = true

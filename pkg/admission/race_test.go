//go:build race

package admission

// raceDetector: the race detector's own allocations are counted by runtime.MemStats.
const raceDetector = true

package wire

import (
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/spec"
)

// The conversions below are the one place trace entries cross the wire
// boundary: roles convert with these instead of copying fields in loops.

// TraceEntries converts a digest trace's entries to their wire form.
func TraceEntries(es []trace.Entry) []TraceEntry {
	if es == nil {
		return nil
	}
	out := make([]TraceEntry, len(es))
	for i, e := range es {
		out[i] = TraceEntry{Step: e.Step, Digest: e.Digest}
	}
	return out
}

// ZKTraceEntries converts a zk trace's entries to their wire form (Digest
// holds the root z_t).
func ZKTraceEntries(es []trace.ZKEntry) []TraceEntry {
	if es == nil {
		return nil
	}
	out := make([]TraceEntry, len(es))
	for i, e := range es {
		out[i] = TraceEntry{Step: e.Step, Digest: e.Root}
	}
	return out
}

// Entries converts wire entries to a digest trace's entries.
func Entries(es []TraceEntry) []trace.Entry {
	if es == nil {
		return nil
	}
	out := make([]trace.Entry, len(es))
	for i, e := range es {
		out[i] = trace.Entry{Step: e.Step, Digest: e.Digest}
	}
	return out
}

// ZKEntries converts wire entries to a zk trace's entries.
func ZKEntries(es []TraceEntry) []trace.ZKEntry {
	if es == nil {
		return nil
	}
	out := make([]trace.ZKEntry, len(es))
	for i, e := range es {
		out[i] = trace.ZKEntry{Step: e.Step, Root: e.Digest}
	}
	return out
}

// Trace is the digest trace of job that es commits.
func Trace(job spec.JobID, es []TraceEntry) *trace.Trace {
	return &trace.Trace{Job: job, Entries: Entries(es)}
}

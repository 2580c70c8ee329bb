// Command promqlnames parses PromQL expressions with Prometheus's own
// parser and says which metric names each one reads. It reads a JSON array
// of expressions on standard input and writes a JSON array of results, one
// per expression, in order: {"names": [...]} or {"error": "..."}.
//
// It is a module of its own (tools/promql) because the Prometheus module
// would raise shared dependencies of the tools module, among them
// aws-sdk-go, which bin/imdsclient pins to v1.25.0 (an IMDSv1-only
// client). scripts/build-tools.sh builds it into bin/promqlnames; the
// dashboard tests (tools/dashboard, tools/e2e) run it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "promqlnames:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		return fmt.Errorf("read expressions: %w", err)
	}
	results := make([]Result, len(exprs))
	for i, e := range exprs {
		results[i] = Parse(e)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// Command crasher is an aws-lambda-go function that panics or exits when asked: how Lambda (and
// the Runtime Interface Emulator) report a handler that panics or calls os.Exit, and what the
// next invocation finds (TestPanicAndExitAsLambdaReportsThem).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Panic bool `json:"panic"`
	Exit  int  `json:"exit"`
}

func main() {
	lambda.Start(func(_ context.Context, ev event) (string, error) {
		switch {
		case ev.Panic:
			panic("asked to panic")
		case ev.Exit != 0:
			os.Exit(ev.Exit)
		}
		return "ok", nil
	})
}

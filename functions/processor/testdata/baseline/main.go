// Command baseline is the smallest aws-lambda-go function: the cold start that
// BenchmarkColdStart compares the processor's against.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) error { return nil })
}

// a8m/kinesis-producer against kpl-sim: Put per record (aggregation is
// built in), failures via NotifyFailures, Stop() flushes. No per-record
// results, so no latency.  go run . ENDPOINT STREAM N SIZE KEYS
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/kinesis"
	producer "github.com/a8m/kinesis-producer"
)

func main() {
	endpoint, stream := os.Args[1], os.Args[2]
	n, _ := strconv.Atoi(os.Args[3])
	size, _ := strconv.Atoi(os.Args[4])
	keys, _ := strconv.Atoi(os.Args[5])
	sess := session.Must(session.NewSession(&aws.Config{Endpoint: aws.String(endpoint), Region: aws.String("us-east-1"),
		Credentials: credentials.NewStaticCredentials("x", "y", "")}))
	pr := producer.New(&producer.Config{StreamName: stream, BacklogCount: 2000, Client: kinesis.New(sess)})
	failed := 0
	done := make(chan struct{})
	go func() {
		for range pr.NotifyFailures() {
			failed++
		}
		close(done)
	}()
	pr.Start()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(97 + i%26)
		}
		binary.LittleEndian.PutUint32(data, uint32(i))
		if err := pr.Put(data, fmt.Sprintf("pk-%d", i%keys)); err != nil {
			failed++
		}
	}
	pr.Stop()
	secs := time.Since(t0).Seconds()
	out, _ := json.Marshal(map[string]any{"records": n, "seconds": secs, "records_per_sec": float64(n) / secs, "failed": failed})
	fmt.Println(string(out))
}

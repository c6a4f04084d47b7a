// A load generator that calls like the API server's webhook client (Go net/http): TLS with
// the CA pinned, HTTP/1.1 keep-alive, POST /mutate?timeout=10s with a JSON body, gzip
// accepted. Every answer is checked: status 200, uid echoed, patch decodes. The open loop
// never caps connections and measures latency from the intended send time.
//
//	goload -port P -ca ca.pem -body review.json -mode closed -conns 8 -seconds 5
//	goload -port P -ca ca.pem -body review.json -mode open -rate 1000 -seconds 5
//
// It prints one JSON object, its own CPU per request included, so a run can tell whether
// the generator, not the server, was the ceiling.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type answer struct {
	Response struct {
		UID   string `json:"uid"`
		Patch string `json:"patch"`
	} `json:"response"`
}

type tally struct {
	sync.Mutex
	latencies []time.Duration
	errors    int
	timeouts  int
}

func (t *tally) add(latency time.Duration, err error) {
	t.Lock()
	defer t.Unlock()
	switch {
	case err == nil:
		t.latencies = append(t.latencies, latency)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		t.timeouts++
	default:
		t.errors++
	}
}

func cpu() time.Duration {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func main() {
	port := flag.Int("port", 8443, "server port on 127.0.0.1")
	caFile := flag.String("ca", "", "CA certificate (PEM) to pin")
	bodyFile := flag.String("body", "", "AdmissionReview JSON to send")
	mode := flag.String("mode", "closed", "closed or open")
	conns := flag.Int("conns", 8, "closed loop: connections")
	rate := flag.Float64("rate", 1000, "open loop: requests per second")
	seconds := flag.Float64("seconds", 5, "duration")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	must(err)
	body, err := os.ReadFile(*bodyFile)
	must(err)
	var review struct {
		Request struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	must(json.Unmarshal(body, &review))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	var dialed atomic.Int64
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1
		MaxIdleConnsPerHost: 1000,
		IdleConnTimeout:     90 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate?timeout=10s", *port)

	one := func() error {
		request, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		request.Header.Set("Content-Type", "application/json")
		request.Header.Set("Accept", "application/json, */*")
		response, err := client.Do(request)
		if err != nil {
			return err
		}
		defer response.Body.Close()
		data, err := io.ReadAll(response.Body)
		if err != nil {
			return err
		}
		var got answer
		if response.StatusCode != 200 || json.Unmarshal(data, &got) != nil ||
			got.Response.UID != review.Request.UID {
			return fmt.Errorf("bad answer: %d", response.StatusCode)
		}
		if got.Response.Patch != "" {
			patch, err := base64.StdEncoding.DecodeString(got.Response.Patch)
			var ops []map[string]any
			if err != nil || json.Unmarshal(patch, &ops) != nil {
				return errors.New("patch does not decode")
			}
		}
		return nil
	}

	duration := time.Duration(*seconds * float64(time.Second))
	results := &tally{}
	cpuBefore := cpu()
	began := time.Now()
	var wait sync.WaitGroup
	if *mode == "closed" {
		end := began.Add(duration)
		for i := 0; i < *conns; i++ {
			wait.Add(1)
			go func() {
				defer wait.Done()
				for time.Now().Before(end) {
					start := time.Now()
					err := one()
					results.add(time.Since(start), err)
				}
			}()
		}
	} else {
		total := int(*rate * *seconds)
		for i := 0; i < total; i++ {
			intended := began.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
			time.Sleep(time.Until(intended))
			wait.Add(1)
			go func() {
				defer wait.Done()
				err := one()
				results.add(time.Since(intended), err)
			}()
		}
	}
	wait.Wait()
	elapsed := time.Since(began)
	spent := cpu() - cpuBefore
	sort.Slice(results.latencies, func(i, j int) bool { return results.latencies[i] < results.latencies[j] })
	ok := len(results.latencies)
	quantile := func(q float64) float64 {
		if ok == 0 {
			return -1
		}
		return float64(results.latencies[min(ok-1, int(q*float64(ok)))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]any{
		"ok": ok, "errors": results.errors, "timeouts": results.timeouts,
		"connections": dialed.Load(), "req_per_s": float64(ok) / elapsed.Seconds(),
		"p50_ms": quantile(0.5), "p99_ms": quantile(0.99), "p999_ms": quantile(0.999),
		"client_cpu_us_per_req": float64(spent.Microseconds()) / float64(max(ok, 1)),
		"client_cpu_share": spent.Seconds() / elapsed.Seconds(),
	})
	fmt.Println(string(out))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

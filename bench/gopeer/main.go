// A lean Go webhook doing CastSlice's default decision, for comparison only: what a Go
// engineer writes with net/http and encoding/json into typed structs. The same opt-in
// annotation, slice-ratio > workload-type preset > default, limits and requests rewrite
// (whole counts), the scheduler's GPU count, the castops.io/sliced annotation and audit
// annotation; the benchmark checks its answers equal CastSlice's for its Pods.
//
//	go build -o gopeer main.go && ./gopeer ADDR CERT KEY
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

const (
	source = "nvidia.com/gpu"
	target = "nvidia.com/gpu-shared"
)

var presets = map[string]int{"training": 4, "inference": 2, "batch": 2, "dev": 1}

type Resources struct {
	Limits   map[string]json.RawMessage `json:"limits"`
	Requests map[string]json.RawMessage `json:"requests"`
}

type Container struct {
	Name          string    `json:"name"`
	RestartPolicy string    `json:"restartPolicy"`
	Resources     Resources `json:"resources"`
}

type Pod struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		InitContainers      []Container `json:"initContainers"`
		Containers          []Container `json:"containers"`
		EphemeralContainers []Container `json:"ephemeralContainers"`
	} `json:"spec"`
}

type Review struct {
	APIVersion string `json:"apiVersion"`
	Request    struct {
		UID       string `json:"uid"`
		Kind      struct{ Group, Version, Kind string } `json:"kind"`
		Namespace string `json:"namespace"`
		Operation string `json:"operation"`
		Object    *Pod   `json:"object"`
	} `json:"request"`
}

type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value,omitempty"`
}

type Response struct {
	UID              string            `json:"uid"`
	Allowed          bool              `json:"allowed"`
	PatchType        string            `json:"patchType,omitempty"`
	Patch            string            `json:"patch,omitempty"`
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
}

type Answer struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Response   Response `json:"response"`
}

func escape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

// count is a container's whole count of the source: a JSON string or number of digits.
func count(raw json.RawMessage) (int, bool) {
	text := strings.Trim(string(raw), `"`)
	n, err := strconv.Atoi(text)
	return n, err == nil && n >= 0
}

func slicesOf(annotations map[string]string) (int, string) {
	if ratio, ok := annotations["castops.io/slice-ratio"]; ok {
		if n, err := strconv.Atoi(ratio); err == nil && n >= 1 && n <= 64 && ratio[0] != '0' {
			return n, "castops.io/slice-ratio=" + ratio
		}
	}
	if kind, ok := presets[annotations["castops.io/workload-type"]]; ok {
		return kind, "castops.io/workload-type=" + annotations["castops.io/workload-type"]
	}
	return 1, "default"
}

func decide(review *Review) Answer {
	request := &review.Request
	answer := Answer{APIVersion: review.APIVersion, Kind: "AdmissionReview",
		Response: Response{UID: request.UID, Allowed: true}}
	pod := request.Object
	if pod == nil || request.Operation != "CREATE" || request.Kind.Kind != "Pod" ||
		request.Namespace == "kube-system" || pod.Metadata.Annotations["castops.io/optimize"] != "true" {
		return answer
	}
	slices, by := slicesOf(pod.Metadata.Annotations)
	var ops []Op
	regular, sidecars, initPeak := 0, 0, 0
	lists := []struct {
		name       string
		containers []Container
	}{{"initContainers", pod.Spec.InitContainers}, {"containers", pod.Spec.Containers},
		{"ephemeralContainers", pod.Spec.EphemeralContainers}}
	for _, list := range lists {
		for i, container := range list.containers {
			gpus := 0
			base := "/spec/" + list.name + "/" + strconv.Itoa(i) + "/resources/"
			for _, section := range []struct {
				name   string
				values map[string]json.RawMessage
			}{{"limits", container.Resources.Limits}, {"requests", container.Resources.Requests}} {
				raw, ok := section.values[source]
				if !ok {
					continue
				}
				n, whole := count(raw)
				if !whole || n == 0 {
					continue
				}
				ops = append(ops, Op{Op: "remove", Path: base + section.name + "/" + escape(source)},
					Op{Op: "add", Path: base + section.name + "/" + escape(target), Value: strconv.Itoa(n * slices)})
				gpus = max(gpus, n)
			}
			switch {
			case list.name == "containers":
				regular += gpus
			case list.name == "initContainers" && container.RestartPolicy == "Always":
				sidecars += gpus
				initPeak = max(initPeak, sidecars)
			case list.name == "initContainers":
				initPeak = max(initPeak, gpus+sidecars)
			}
		}
	}
	if len(ops) == 0 {
		return answer
	}
	gpus := max(regular+sidecars, initPeak)
	message := fmt.Sprintf("%s x%d -> %s x%d (%d per GPU by %s; opted in by castops.io/optimize=true)",
		source, gpus, target, gpus*slices, slices, by)
	// opted in by annotation, so the annotations map exists
	ops = append(ops, Op{Op: "add", Path: "/metadata/annotations/castops.io~1sliced", Value: message})
	patch, _ := json.Marshal(ops)
	answer.Response.PatchType = "JSONPatch"
	answer.Response.Patch = base64.StdEncoding.EncodeToString(patch)
	answer.Response.AuditAnnotations = map[string]string{"sliced": message}
	return answer
}

func main() {
	http.HandleFunc("/mutate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		var review Review
		if err != nil || json.Unmarshal(body, &review) != nil {
			http.Error(w, `{"title":"bad body"}`, http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(decide(&review))
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	if err := http.ListenAndServeTLS(os.Args[1], os.Args[2], os.Args[3], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

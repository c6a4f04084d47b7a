// A minimal Go webhook doing CastSlice's core mutation, for comparison only: the same
// opt-in annotation, workload-type presets, limits and requests rewrite and sliced
// annotation, with net/http and encoding/json from the standard library.
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
	"strings"
)

var presets = map[string]int{"training": 4, "inference": 2, "batch": 2, "dev": 1}

func escape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func mutate(review map[string]any) map[string]any {
	request, _ := review["request"].(map[string]any)
	response := map[string]any{"uid": request["uid"], "allowed": true}
	out := map[string]any{"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": response}
	pod, _ := request["object"].(map[string]any)
	metadata, _ := pod["metadata"].(map[string]any)
	annotations, _ := metadata["annotations"].(map[string]any)
	if request["operation"] != "CREATE" || annotations["castops.io/optimize"] != "true" {
		return out
	}
	slices := 1
	if kind, ok := annotations["castops.io/workload-type"].(string); ok && presets[kind] > 0 {
		slices = presets[kind]
	}
	spec, _ := pod["spec"].(map[string]any)
	var ops []map[string]any
	gpus := 0
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		containers, _ := spec[list].([]any)
		for i, c := range containers {
			container, _ := c.(map[string]any)
			resources, _ := container["resources"].(map[string]any)
			for _, section := range []string{"limits", "requests"} {
				values, _ := resources[section].(map[string]any)
				count, ok := values["nvidia.com/gpu"].(string)
				var n int
				if !ok || count == "0" {
					continue
				}
				fmt.Sscanf(count, "%d", &n)
				base := fmt.Sprintf("/spec/%s/%d/resources/%s/", list, i, section)
				ops = append(ops, map[string]any{"op": "remove", "path": base + escape("nvidia.com/gpu")},
					map[string]any{"op": "add", "path": base + escape("nvidia.com/gpu-shared"),
						"value": fmt.Sprint(n * slices)})
				if section == "limits" {
					gpus += n
				}
			}
		}
	}
	if len(ops) == 0 {
		return out
	}
	ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations/castops.io~1sliced",
		"value": fmt.Sprintf("nvidia.com/gpu x%d -> nvidia.com/gpu-shared x%d", gpus, gpus*slices)})
	patch, _ := json.Marshal(ops)
	response["patchType"] = "JSONPatch"
	response["patch"] = base64.StdEncoding.EncodeToString(patch)
	return out
}

func main() {
	http.HandleFunc("/mutate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 7<<20))
		var review map[string]any
		if err != nil || json.Unmarshal(body, &review) != nil {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(mutate(review))
	})
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	if err := http.ListenAndServeTLS(os.Args[1], os.Args[2], os.Args[3], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

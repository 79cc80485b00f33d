package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/generic-corp/soak-exporter/deploy/prometheus"
)

const (
	agentContainer = "soak-exporter"
	agentPort      = 9477
	authSecret     = "soak-exporter-auth"
	sizingName     = "soak-exporter-sizing"
	nonRootUID     = 65532
)

// contractEnv lists the agent's environment variables (team contract).
func contractEnv() []string {
	return []string{
		"SOAK_TARGET_URL", "SOAK_TARGET_NAME", "SOAK_DRIVER", "SOAK_CLIENTS", "SOAK_CONNECT_RATE",
		"SOAK_CONNECT_TIMEOUT", "SOAK_BACKOFF_MIN", "SOAK_BACKOFF_MAX", "SOAK_EVENT_NAME",
		"SOAK_EVENT_RATE", "SOAK_EVENT_PAYLOAD_BYTES", "SOAK_ACK_TIMEOUT", "SOAK_SOCKETIO_PATH",
		"SOAK_AUTH_TOKEN", "SOAK_AUTH_TOKEN_FILE", "SOAK_AUTH_JSON", "SOAK_HEADERS", "SOAK_QUERY",
		"SOAK_TLS_CA_FILE", "SOAK_TLS_INSECURE_SKIP_VERIFY", "SOAK_LISTEN_ADDRESS", "SOAK_LOG_LEVEL",
		"SOAK_LOG_FORMAT", "SOAK_MEMORY_INTERVAL", "SOAK_MEMORY_SOURCES", "SOAK_MEMORY_SCRAPE_URL",
		"SOAK_MEMORY_PID", "SOAK_MEMORY_PROCESS_MATCH", "SOAK_MEMORY_LIMIT_BYTES", "SOAK_LEAK_WINDOWS",
	}
}

// object is one decoded manifest.
type object struct {
	Source string
	Kind   string
	Name   string
	Obj    any
}

// decode decodes one YAML document strictly into the type of its
// apiVersion and kind: unknown fields, duplicate fields and wrong types fail.
func decode(doc []byte, source string) (object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		obj = &serviceMonitor{}
	case "monitoring.coreos.com/v1 PodMonitor":
		obj = &podMonitor{}
	case "monitoring.coreos.com/v1 PrometheusRule":
		obj = &prometheusRule{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		obj = &kustomization{}
	default:
		return object{}, fmt.Errorf("%s: no strict decoder for apiVersion %q kind %q", source, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return object{}, fmt.Errorf("%s: %s %q: %w", source, tm.Kind, tm.Metadata.Name, err)
	}
	return object{Source: source, Kind: tm.Kind, Name: tm.Metadata.Name, Obj: obj}, nil
}

// splitDocs splits a multi-document YAML stream, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripYAMLComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripYAMLComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func decodeAll(t *testing.T, b []byte, source string) []object {
	t.Helper()
	var out []object
	for i, d := range splitDocs(b) {
		o, err := decode(d, fmt.Sprintf("%s#%d", source, i))
		if err != nil {
			t.Error(err)
			continue
		}
		out = append(out, o)
	}
	return out
}

// TestManifestsDecodeStrictly decodes every YAML file under deploy/k8s.
func TestManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]int{}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, o := range decodeAll(t, b, p) {
			kinds[o.Kind]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"Deployment": 2, "Service": 2, "Secret": 1, "ConfigMap": 1,
		"ServiceMonitor": 1, "PrometheusRule": 1, "Kustomization": 3}
	for k, n := range want {
		if kinds[k] < n {
			t.Errorf("%d %s manifests, want at least %d (found %v)", kinds[k], k, n, kinds)
		}
	}
}

// TestStrictDecoderRejects proves that the decoder used above fails on the
// mistakes it is meant to catch.
func TestStrictDecoderRejects(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"unknown container field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n        - name: c\n          imagePullPolicyy: Always\n"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: two\n"},
		{"duplicate field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nmetadata: {name: t}\n"},
		{"bad quantity", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n        - name: c\n          resources: {limits: {memory: lots}}\n"},
		{"unknown ServiceMonitor field", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec:\n  selector: {}\n  endpoints: [{port: metrics, intervall: 5s}]\n"},
		{"unknown PrometheusRule field", "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\nspec:\n  groups: [{name: g, rules: [{alert: A, expr: up, fro: 5m}]}]\n"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode([]byte(tc.doc), tc.name); err == nil {
				t.Errorf("decoded without error:\n%s", tc.doc)
			}
		})
	}
}

func TestPrometheusRuleUpToDate(t *testing.T) {
	want, err := PrometheusRule(prometheus.ShippedRuleFile())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(PrometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go generate ./deploy/k8s`", PrometheusRuleFile)
	}
	objs := decodeAll(t, got, PrometheusRuleFile)
	if len(objs) != 1 {
		t.Fatalf("%d documents in %s", len(objs), PrometheusRuleFile)
	}
	assertRulesMatch(t, objs[0].Obj.(*prometheusRule))
}

// assertRulesMatch compares a PrometheusRule's groups field by field with
// the shipped rule file.
func assertRulesMatch(t *testing.T, pr *prometheusRule) {
	t.Helper()
	rf, err := prometheus.ParseRuleFile(prometheus.ShippedRuleFile())
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Spec.Groups) != len(rf.Groups) {
		t.Fatalf("PrometheusRule has %d groups, rule file %d", len(pr.Spec.Groups), len(rf.Groups))
	}
	for i, g := range rf.Groups {
		pg := pr.Spec.Groups[i]
		if pg.Name != g.Name || pg.Interval != g.Interval || len(pg.Rules) != len(g.Rules) {
			t.Fatalf("group %d: %q/%q/%d rules, want %q/%q/%d", i, pg.Name, pg.Interval, len(pg.Rules), g.Name, g.Interval, len(g.Rules))
		}
		for j, r := range g.Rules {
			pr := pg.Rules[j]
			if pr.Record != r.Record || pr.Alert != r.Alert || pr.Expr != r.Expr || pr.For != r.For ||
				pr.KeepFiringFor != r.KeepFiringFor || !mapsEqual(pr.Labels, r.Labels) || !mapsEqual(pr.Annotations, r.Annotations) {
				t.Errorf("group %s rule %d (%s%s) differs from the rule file", g.Name, j, r.Record, r.Alert)
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// render builds an overlay with the kustomize API (as kubectl apply -k
// would) and decodes the output strictly.
func render(t *testing.T, dir string) []object {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, out, "kustomize build "+dir)
}

func find[T any](objs []object, kind string) []*T {
	var out []*T
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o.Obj.(*T))
		}
	}
	return out
}

// sizing reads the agent's resources from base/sizing.yaml.
func sizing(t *testing.T) corev1.ResourceRequirements {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("base", "sizing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, b, "base/sizing.yaml")
	if len(objs) != 1 || objs[0].Kind != "ConfigMap" || objs[0].Name != sizingName {
		t.Fatalf("base/sizing.yaml must hold the ConfigMap %s", sizingName)
	}
	cm := objs[0].Obj.(*corev1.ConfigMap)
	if cm.Annotations["config.kubernetes.io/local-config"] != "true" {
		t.Error("sizing ConfigMap must be local-config (never applied)")
	}
	q := func(key string) resource.Quantity {
		v, ok := cm.Data[key]
		if !ok {
			t.Fatalf("sizing has no %s", key)
		}
		r, err := resource.ParseQuantity(v)
		if err != nil {
			t.Fatalf("sizing %s: %v", key, err)
		}
		return r
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: q("cpu-request"), corev1.ResourceMemory: q("memory-request")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: q("memory-limit")},
	}
}

// assertSecurityContext checks the effective security context of c in a
// pod with security context pod.
func assertSecurityContext(t *testing.T, where string, pod *corev1.PodSecurityContext, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: container %s has no securityContext", where, c.Name)
		return
	}
	var podNonRoot *bool
	var podUser *int64
	var podSeccomp *corev1.SeccompProfile
	if pod != nil {
		podNonRoot, podUser, podSeccomp = pod.RunAsNonRoot, pod.RunAsUser, pod.SeccompProfile
	}
	nonRoot := cmpOr(sc.RunAsNonRoot, podNonRoot)
	user := cmpOr(sc.RunAsUser, podUser)
	seccomp := cmpOr(sc.SeccompProfile, podSeccomp)
	switch {
	case nonRoot == nil || !*nonRoot:
		t.Errorf("%s/%s: runAsNonRoot is not true", where, c.Name)
	case user == nil || *user != nonRootUID:
		t.Errorf("%s/%s: runAsUser is not %d", where, c.Name, nonRootUID)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s/%s: readOnlyRootFilesystem is not true", where, c.Name)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s/%s: allowPrivilegeEscalation is not false", where, c.Name)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s/%s: capabilities must drop ALL and add none", where, c.Name)
	case seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s/%s: seccompProfile is not RuntimeDefault", where, c.Name)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s/%s: privileged", where, c.Name)
	}
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// portNumber resolves a probe or Service port (number or name) on c.
func portNumber(c corev1.Container, p string, n int32) int32 {
	if p == "" {
		return n
	}
	for _, cp := range c.Ports {
		if cp.Name == p {
			return cp.ContainerPort
		}
	}
	return -1
}

func assertProbe(t *testing.T, where string, c corev1.Container, pr *corev1.Probe, wantPath string) {
	t.Helper()
	if pr == nil || pr.HTTPGet == nil {
		t.Errorf("%s: %s has no HTTP probe for %s", where, c.Name, wantPath)
		return
	}
	port := portNumber(c, pr.HTTPGet.Port.StrVal, pr.HTTPGet.Port.IntVal)
	if pr.HTTPGet.Path != wantPath || port != agentPort {
		t.Errorf("%s: probe %s on port %d, want %s on %d", where, pr.HTTPGet.Path, port, wantPath, agentPort)
	}
}

// assertAgent checks the soak-exporter container of one pod template.
func assertAgent(t *testing.T, where string, spec corev1.PodSpec, c corev1.Container, want corev1.ResourceRequirements) {
	t.Helper()
	if c.Image == "" {
		t.Errorf("%s: no image", where)
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		got, ok := c.Resources.Requests[name]
		w := want.Requests[name]
		if !ok || got.Cmp(w) != 0 {
			t.Errorf("%s: requests.%s = %v, want %v from base/sizing.yaml", where, name, got.String(), w.String())
		}
	}
	if got, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || got.Cmp(want.Limits[corev1.ResourceMemory]) != 0 {
		t.Errorf("%s: limits.memory = %v, want %v", where, got.String(), want.Limits.Memory().String())
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Errorf("%s: CPU limit set; throttling would show as target latency", where)
	}
	for _, e := range c.Env {
		if !slices.Contains(contractEnv(), e.Name) {
			t.Errorf("%s: env %s is not in the contract", where, e.Name)
		}
	}
	if _, ok := env(c, "SOAK_AUTH_TOKEN"); ok {
		t.Errorf("%s: SOAK_AUTH_TOKEN in the environment; mount the Secret and use SOAK_AUTH_TOKEN_FILE", where)
	}
	tokenFile, ok := env(c, "SOAK_AUTH_TOKEN_FILE")
	if !ok {
		t.Errorf("%s: no SOAK_AUTH_TOKEN_FILE", where)
	} else {
		assertSecretFile(t, where, spec, c, tokenFile.Value)
	}
	var hasMetrics bool
	for _, p := range c.Ports {
		hasMetrics = hasMetrics || p.ContainerPort == agentPort
	}
	if !hasMetrics {
		t.Errorf("%s: no container port %d", where, agentPort)
	}
	assertProbe(t, where+" readiness", c, c.ReadinessProbe, "/-/ready")
	assertProbe(t, where+" liveness", c, c.LivenessProbe, "/-/healthy")
}

// assertSecretFile checks that file is the token key of the auth Secret,
// mounted read-only into c.
func assertSecretFile(t *testing.T, where string, spec corev1.PodSpec, c corev1.Container, file string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if path.Dir(file) != path.Clean(m.MountPath) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: auth volume mounted read-write", where)
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.Secret == nil || v.Secret.SecretName != authSecret {
				t.Errorf("%s: %s is not on Secret %s", where, file, authSecret)
				return
			}
			for _, it := range v.Secret.Items {
				if it.Path == path.Base(file) && it.Key == "token" {
					return
				}
			}
			if len(v.Secret.Items) == 0 && path.Base(file) == "token" {
				return
			}
			t.Errorf("%s: Secret volume has no item for %s", where, file)
			return
		}
	}
	t.Errorf("%s: SOAK_AUTH_TOKEN_FILE=%s is not inside a mounted volume", where, file)
}

func TestOverlays(t *testing.T) {
	want := sizing(t)
	jobRE := regexp.MustCompile("^(?:" + prometheus.AgentJobRegex + ")$")
	for _, overlay := range []string{"sidecar", "standalone"} {
		t.Run(overlay, func(t *testing.T) {
			objs := render(t, filepath.Join("overlays", overlay))
			for _, cm := range find[corev1.ConfigMap](objs, "ConfigMap") {
				if cm.Name == sizingName {
					t.Error("the local sizing ConfigMap is in the output")
				}
			}
			secrets := find[corev1.Secret](objs, "Secret")
			if len(secrets) != 1 || secrets[0].Name != authSecret || secrets[0].StringData["token"] == "" && len(secrets[0].Data["token"]) == 0 {
				t.Errorf("want the Secret %s with a token key", authSecret)
			}
			rules := find[prometheusRule](objs, "PrometheusRule")
			if len(rules) != 1 {
				t.Fatalf("%d PrometheusRules", len(rules))
			}
			assertRulesMatch(t, rules[0])

			deps := find[appsv1.Deployment](objs, "Deployment")
			if len(deps) != 1 {
				t.Fatalf("%d Deployments, want 1", len(deps))
			}
			d := deps[0]
			spec := d.Spec.Template.Spec
			if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Error("Deployment selector does not match its pod template")
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken must be false (the agent needs no API access)")
			}
			var agent *corev1.Container
			for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
				assertSecurityContext(t, d.Name, spec.SecurityContext, c)
				if c.Name == agentContainer {
					agent = &c
				}
			}
			if agent == nil {
				t.Fatalf("no %s container", agentContainer)
			}
			assertAgent(t, d.Name+"/"+agentContainer, spec, *agent, want)

			switch overlay {
			case "sidecar":
				assertSidecar(t, d)
			case "standalone":
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
					t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
				}
				if _, ok := env(*agent, "SOAK_CLIENTS"); !ok {
					t.Error("standalone agents must set SOAK_CLIENTS (clients per replica)")
				}
			}

			// Service and ServiceMonitor: the agent's port is scraped under
			// a job the agent alerts recognise.
			svcs := find[corev1.Service](objs, "Service")
			mons := find[serviceMonitor](objs, "ServiceMonitor")
			if len(svcs) != 1 || len(mons) != 1 {
				t.Fatalf("%d Services and %d ServiceMonitors, want 1 and 1", len(svcs), len(mons))
			}
			svc, mon := svcs[0], mons[0]
			if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("Service %s does not select the Deployment's pods", svc.Name)
			}
			if !selects(mon.Spec.Selector.MatchLabels, svc.Labels) {
				t.Errorf("ServiceMonitor does not select Service %s", svc.Name)
			}
			job := svc.Name
			if mon.Spec.JobLabel != "" && svc.Labels[mon.Spec.JobLabel] != "" {
				job = svc.Labels[mon.Spec.JobLabel]
			}
			if !jobRE.MatchString(job) {
				t.Errorf("scrape job would be %q, which SoakAgentAbsent's regex %q does not match", job, prometheus.AgentJobRegex)
			}
			if !slices.Contains(mon.Spec.ScrapeProtocols, "PrometheusProto") {
				t.Error("ServiceMonitor scrapeProtocols lacks PrometheusProto (native histograms)")
			}
			if mon.Spec.ScrapeClassicHistograms == nil || !*mon.Spec.ScrapeClassicHistograms {
				t.Error("ServiceMonitor must keep classic histograms: the rules read _bucket series")
			}
			for _, ep := range mon.Spec.Endpoints {
				var target int32 = -1
				for _, p := range svc.Spec.Ports {
					if p.Name == ep.Port {
						target = portNumber(*agent, p.TargetPort.StrVal, p.TargetPort.IntVal)
					}
				}
				if target != agentPort {
					t.Errorf("ServiceMonitor endpoint port %q reaches container port %d, want %d", ep.Port, target, agentPort)
				}
				if ep.Path != "/metrics" {
					t.Errorf("ServiceMonitor path %q", ep.Path)
				}
			}
		})
	}
}

func assertSidecar(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if spec.ShareProcessNamespace == nil || !*spec.ShareProcessNamespace {
		t.Error("shareProcessNamespace must be true for procfs sampling")
	}
	var sidecar *corev1.Container
	for i, c := range spec.InitContainers {
		if c.Name == agentContainer {
			sidecar = &spec.InitContainers[i]
		}
	}
	if sidecar == nil {
		t.Fatal("soak-exporter is not an init container (native sidecar)")
	}
	for _, c := range spec.Containers {
		if c.Name == agentContainer {
			t.Error("soak-exporter must not also be a regular container")
		}
	}
	if sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("sidecar restartPolicy must be Always (native sidecar)")
	}
	wantEnv := map[string]string{
		"SOAK_TARGET_URL":     "http://127.0.0.1:3000",
		"SOAK_MEMORY_SOURCES": "procfs,self",
	}
	for k, v := range wantEnv {
		if e, _ := env(*sidecar, k); e.Value != v {
			t.Errorf("%s = %q, want %q", k, e.Value, v)
		}
	}
	if e, _ := env(*sidecar, "SOAK_MEMORY_PROCESS_MATCH"); e.Value == "" {
		t.Error("SOAK_MEMORY_PROCESS_MATCH must name the app's process")
	}
	if e, ok := env(*sidecar, "SOAK_MEMORY_LIMIT_BYTES"); ok && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
		name := e.ValueFrom.ResourceFieldRef.ContainerName
		if !slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == name }) {
			t.Errorf("SOAK_MEMORY_LIMIT_BYTES refers to unknown container %q", name)
		}
	}
	var appPort bool
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			appPort = appPort || p.ContainerPort == 3000
		}
	}
	if !appPort {
		t.Error("no app container listens on 3000, the sidecar's SOAK_TARGET_URL")
	}
	// The sidecar's readiness must not depend on the target: it probes
	// the agent's own endpoint, never the app's port.
	if p := sidecar.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntVal == 3000 {
		t.Error("sidecar readiness must probe the agent, not the app")
	}
}

// selects reports whether every selector label is in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

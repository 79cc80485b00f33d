package k8s

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Local, deliberately small mirrors of the monitoring.coreos.com/v1 and
// kustomize types the manifests use. Decoded with UnmarshalStrict, a field
// that is not listed here (a typo, or a field the operator does not have)
// fails the test; add fields here only after checking the CRD.

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	JobLabel                string               `json:"jobLabel,omitempty"`
	TargetLabels            []string             `json:"targetLabels,omitempty"`
	PodTargetLabels         []string             `json:"podTargetLabels,omitempty"`
	Endpoints               []monitorEndpoint    `json:"endpoints"`
	Selector                metav1.LabelSelector `json:"selector"`
	NamespaceSelector       *namespaceSelector   `json:"namespaceSelector,omitempty"`
	ScrapeProtocols         []string             `json:"scrapeProtocols,omitempty"`
	ScrapeClassicHistograms *bool                `json:"scrapeClassicHistograms,omitempty"`
	SampleLimit             *uint64              `json:"sampleLimit,omitempty"`
}

type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              podMonitorSpec `json:"spec"`
}

type podMonitorSpec struct {
	JobLabel                string               `json:"jobLabel,omitempty"`
	PodTargetLabels         []string             `json:"podTargetLabels,omitempty"`
	PodMetricsEndpoints     []monitorEndpoint    `json:"podMetricsEndpoints"`
	Selector                metav1.LabelSelector `json:"selector"`
	NamespaceSelector       *namespaceSelector   `json:"namespaceSelector,omitempty"`
	ScrapeProtocols         []string             `json:"scrapeProtocols,omitempty"`
	ScrapeClassicHistograms *bool                `json:"scrapeClassicHistograms,omitempty"`
}

type namespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

type monitorEndpoint struct {
	Port          string              `json:"port,omitempty"`
	TargetPort    *intstr.IntOrString `json:"targetPort,omitempty"`
	Path          string              `json:"path,omitempty"`
	Scheme        string              `json:"scheme,omitempty"`
	Interval      string              `json:"interval,omitempty"`
	ScrapeTimeout string              `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool                `json:"honorLabels,omitempty"`
}

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

type ruleGroup struct {
	Name                    string            `json:"name"`
	Interval                string            `json:"interval,omitempty"`
	Limit                   *int              `json:"limit,omitempty"`
	QueryOffset             string            `json:"query_offset,omitempty"`
	PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
	Labels                  map[string]string `json:"labels,omitempty"`
	Rules                   []rule            `json:"rules"`
}

type rule struct {
	Record        string            `json:"record,omitempty"`
	Alert         string            `json:"alert,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type kustomization struct {
	APIVersion   string        `json:"apiVersion"`
	Kind         string        `json:"kind"`
	Resources    []string      `json:"resources,omitempty"`
	Namespace    string        `json:"namespace,omitempty"`
	Replacements []replacement `json:"replacements,omitempty"`
	Images       []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

type replacement struct {
	Source struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		FieldPath string `json:"fieldPath"`
	} `json:"source"`
	Targets []struct {
		Select struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"select"`
		FieldPaths []string `json:"fieldPaths"`
		Options    struct {
			Create bool `json:"create,omitempty"`
		} `json:"options,omitempty"`
	} `json:"targets"`
}

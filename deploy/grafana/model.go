package grafana

// The subset of Grafana's dashboard JSON model (schemaVersion 39) that the
// dashboard uses. Panel-type specific options stay as maps.

type dashboard struct {
	Annotations   annotations    `json:"annotations"`
	Description   string         `json:"description"`
	Editable      bool           `json:"editable"`
	FiscalYear    int            `json:"fiscalYearStartMonth"`
	GraphTooltip  int            `json:"graphTooltip"`
	Links         []link         `json:"links"`
	LiveNow       bool           `json:"liveNow"`
	Panels        []*panel       `json:"panels"`
	Refresh       string         `json:"refresh"`
	SchemaVersion int            `json:"schemaVersion"`
	Tags          []string       `json:"tags"`
	Templating    templating     `json:"templating"`
	Time          timeRange      `json:"time"`
	Timepicker    map[string]any `json:"timepicker"`
	Timezone      string         `json:"timezone"`
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	Version       int            `json:"version"`
	WeekStart     string         `json:"weekStart"`
}

type annotations struct {
	List []any `json:"list"`
}

type link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	URL         string   `json:"url,omitempty"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Icon        string   `json:"icon"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tooltip     string   `json:"tooltip"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type templating struct {
	List []variable `json:"list"`
}

type variable struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Description string         `json:"description"`
	Type        string         `json:"type"`
	Datasource  *datasourceRef `json:"datasource,omitempty"`
	Query       string         `json:"query"`
	Definition  string         `json:"definition,omitempty"`
	Regex       string         `json:"regex"`
	Refresh     int            `json:"refresh"`
	Sort        int            `json:"sort,omitempty"`
	Multi       bool           `json:"multi"`
	IncludeAll  bool           `json:"includeAll"`
	AllValue    string         `json:"allValue,omitempty"`
	Hide        int            `json:"hide"`
	Current     map[string]any `json:"current"`
	Options     []any          `json:"options"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Datasource  *datasourceRef `json:"datasource,omitempty"`
	GridPos     gridPos        `json:"gridPos"`
	FieldConfig *fieldConfig   `json:"fieldConfig,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
	Panels      []*panel       `json:"panels,omitempty"`
	Targets     []target       `json:"targets,omitempty"`
}

type fieldConfig struct {
	Defaults  fieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

type fieldDefaults struct {
	Unit       string         `json:"unit"`
	Min        *float64       `json:"min,omitempty"`
	Max        *float64       `json:"max,omitempty"`
	Decimals   *int           `json:"decimals,omitempty"`
	Color      map[string]any `json:"color"`
	Custom     map[string]any `json:"custom,omitempty"`
	Mappings   []any          `json:"mappings"`
	Thresholds thresholds     `json:"thresholds"`
}

type thresholds struct {
	Mode  string          `json:"mode"`
	Steps []thresholdStep `json:"steps"`
}

type thresholdStep struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

type target struct {
	RefID        string         `json:"refId"`
	Datasource   *datasourceRef `json:"datasource"`
	EditorMode   string         `json:"editorMode"`
	Expr         string         `json:"expr"`
	Format       string         `json:"format"`
	Instant      bool           `json:"instant"`
	Range        bool           `json:"range"`
	LegendFormat string         `json:"legendFormat"`
}

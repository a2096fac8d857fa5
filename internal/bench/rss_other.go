//go:build !linux && !darwin

package bench

import "os"

// maxRSSMiB is 0 where the platform does not report a child's peak
// resident memory portably; the table then shows "-".
func maxRSSMiB(*os.ProcessState) float64 { return 0 }

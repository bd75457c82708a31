package engine

import "testing"

func TestSumInfo(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"", "", ""},
		{"", "Records: 2  Duplicates: 0  Warnings: 0", "Records: 2  Duplicates: 0  Warnings: 0"},
		{"Records: 2  Duplicates: 1  Warnings: 1", "", "Records: 2  Duplicates: 1  Warnings: 1"},
		{"Records: 2  Duplicates: 1  Warnings: 1", "Records: 9  Duplicates: 0  Warnings: 3", "Records: 11  Duplicates: 1  Warnings: 4"},
		{"Rows matched: 1  Changed: 0  Warnings: 0", "Rows matched: 4  Changed: 4  Warnings: 0", "Rows matched: 5  Changed: 4  Warnings: 0"},
		{"Records: 3  Deleted: 0  Skipped: 1  Warnings: 1", "Records: 1  Deleted: 1  Skipped: 0  Warnings: 0", "Records: 4  Deleted: 1  Skipped: 1  Warnings: 1"},
		// Texts of different statements, or not MariaDB's: the first.
		{"Records: 2  Duplicates: 0  Warnings: 0", "Rows matched: 1  Changed: 1  Warnings: 0", "Records: 2  Duplicates: 0  Warnings: 0"},
		{"Records: 2  Duplicates: 0", "Records: 2  Duplicates: 0  Warnings: 0", "Records: 2  Duplicates: 0"},
		{"Records: x", "Records: 1", "Records: x"},
	} {
		if got := SumInfo(tc.a, tc.b); got != tc.want {
			t.Errorf("SumInfo(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestInfoWithCount(t *testing.T) {
	for _, tc := range []struct {
		info string
		n    uint64
		want string
	}{
		{"Records: 3  Duplicates: 1  Warnings: 1", 2, "Records: 3  Duplicates: 1  Warnings: 2"},
		{"Records: 3  Duplicates: 1  Warnings: 1", 1, "Records: 3  Duplicates: 1  Warnings: 1"},
		{"Records: 3  Deleted: 0  Skipped: 0  Warnings: 12", 100, "Records: 3  Deleted: 0  Skipped: 0  Warnings: 100"},
		{"Rows matched: 1", 5, "Rows matched: 1"},
		{"", 5, ""},
	} {
		if got := InfoWithCount(tc.info, "Warnings", tc.n); got != tc.want {
			t.Errorf("InfoWithCount(%q, %d) = %q, want %q", tc.info, tc.n, got, tc.want)
		}
	}
}

func TestInsertInfo(t *testing.T) {
	for _, tc := range []struct {
		affected uint64
		ignore   bool
		want     string
	}{
		{1, false, "Records: 1  Duplicates: 0  Warnings: 0"},
		{2, false, "Records: 1  Duplicates: 1  Warnings: 0"}, // REPLACE, ON DUPLICATE KEY UPDATE
		{0, false, "Records: 1  Duplicates: 0  Warnings: 0"}, // ON DUPLICATE KEY UPDATE, unchanged
		{0, true, "Records: 1  Duplicates: 1  Warnings: 0"},
		{1, true, "Records: 1  Duplicates: 0  Warnings: 0"},
	} {
		if got := insertInfo(tc.affected, tc.ignore); got != tc.want {
			t.Errorf("insertInfo(%d, %v) = %q, want %q", tc.affected, tc.ignore, got, tc.want)
		}
	}
}

# bench/plot.gp - the PNG plots of bench/run, from the .dat files its summary
# writes (one block per contender: x, median, min, max; titles in .titles).
#
#   gnuplot -e "dir='docs/perf'" bench/plot.gp
#
# Each point is the median of the rounds; the bar spans their min and max.

if (!exists("dir")) dir = "docs/perf"
set terminal pngcairo size 900,560 font "sans,11" noenhanced
set grid
set key top left box opaque
set style data yerrorlines
set pointsize 1.2
have(f) = system("test -s '".dir."/".f.".dat' && echo 1 || echo 0") eq "1"
titles(f) = system("cat '".dir."/".f.".titles'")

# plot_series NAME: every block of NAME.dat, titled from NAME.titles.
plot_series = "t = titles(NAME); plot for [i=1:words(t)] dir.'/'.NAME.'.dat' index (i-1) using 1:2:3:4 lw 2 pt 7 title word(t, i)"

if (have("reads-rps")) {
	set output dir."/reads-rps.png"
	set title "GET /v1/leaderboard, Spain April 2019 (10 KB): throughput"
	set xlabel "connections"; set ylabel "requests/s"
	set logscale x; set xrange [10:1600]; set yrange [0:*]
	set xtics (16, 64, 256, 1000)
	NAME = "reads-rps"; eval plot_series

	set output dir."/reads-p99.png"
	set title "GET /v1/leaderboard: 99th percentile latency"
	set ylabel "p99 latency, ms (log)"
	set logscale y; set yrange [*:*]; set key top left
	NAME = "reads-p99"; eval plot_series
	unset logscale; unset xtics; set xtics; set xrange [*:*]; set yrange [*:*]
}

if (have("writes-rps")) {
	set output dir."/writes-rps.png"
	set title "Writes: tallyd POST one-province snapshot vs Redis SET 1 KB"
	set xlabel "clients"; set ylabel "acknowledged writes/s"
	set logscale x 2; set xrange [0.7:90]; set yrange [0:*]
	set xtics (1, 8, 64)
	NAME = "writes-rps"; eval plot_series

	set output dir."/writes-p99.png"
	set title "Writes: 99th percentile latency"
	set ylabel "p99 latency, ms (log)"
	set logscale y; set yrange [*:*]
	NAME = "writes-p99"; eval plot_series
	unset logscale; unset xtics; set xtics; set xrange [*:*]; set yrange [*:*]
}

if (have("apply")) {
	set output dir."/apply.png"
	set title "Cost of one feed against election size (50 lists)"
	set xlabel "provinces (log)"; set ylabel "ns per feed (log)"
	set logscale x; set logscale y; set xrange [30:200000]; set yrange [*:*]
	set format x "%.0f"
	NAME = "apply"; eval plot_series
	unset logscale; set format x
}

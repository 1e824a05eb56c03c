using BenchmarkDotNet.Running;
using IsolateGrains.Benchmarks;

// dotnet run -c Release --project benchmarks/IsolateGrains.Benchmarks                -> quick table (default)
// dotnet run -c Release --project benchmarks/IsolateGrains.Benchmarks -- --bdn [BDN args] -> BenchmarkDotNet
// The child mode is the "process per sandbox" baseline: it runs the same lambda in a fresh process.
if (args is ["--child", var value])
{
    Func<int> lambda = () => int.Parse(value) + 1;
    Console.WriteLine($"{lambda()} {Measure.PrivateResidentBytesOf(File.ReadAllText("/proc/self/smaps_rollup"))}");
    return 0;
}
if (args is ["--guest-costs"])
{
    // dotnet run -c Release --project benchmarks/IsolateGrains.Benchmarks -- --guest-costs
    return GuestCosts.Run();
}
if (args is ["--diag"])
{
    return SandboxDiagnostics.Run();
}
if (args.Length > 0 && args[0] == "--grain-row")
{
    // dotnet run -c Release --project benchmarks/IsolateGrains.Benchmarks -- --grain-row [--calls N] [--activations N]
    return GrainCallProfile.Run(args[1..]);
}
if (args.Length > 0 && args[0] == "--snapshots")
{
    // dotnet run -c Release --project benchmarks/IsolateGrains.Benchmarks -- --snapshots [samples] [--map] [--levels]
    return SnapshotDiagnostics.Run(args[1..]);
}
if (args.Length > 0 && args[0] == "--cluster")
{
    // dotnet run -c Release --project benchmarks/IsolateGrains.Benchmarks -- --cluster [--sandboxes N]
    return ClusterBenchmark.Run(args[1..]);
}
if (args.Length > 0 && args[0] == "--bdn")
{
    BenchmarkSwitcher.FromAssembly(typeof(QuickBenchmark).Assembly).Run(args[1..]);
    return 0;
}
return QuickBenchmark.Run(args);

using BenchmarkDotNet.Attributes;

namespace IsolateGrains.Benchmarks;

/// <summary>The same comparisons as the quick table, under BenchmarkDotNet (<c>-- --bdn --filter *</c>).</summary>
[MemoryDiagnoser]
public class SandboxBenchmarks
{
    private IsolatedRuntimeHost _host = null!;
    private IsolatedRuntime _warm = null!;
    private Func<int> _direct = null!;
    private int _x = 41;

    [GlobalSetup]
    public void Setup()
    {
        _host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { } }).WithBinDirectoryAssemblyLoader();
        _warm = new IsolatedRuntime(_host);
        var x = _x;
        _direct = () => x + 1;
        _warm.Invoke(() => x + 1);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _warm.Dispose();
        _host.Dispose();
    }

    [Benchmark(Baseline = true, Description = "direct call")]
    public int DirectCall() => _direct();

    [Benchmark(Description = "Invoke(() => x + 1)")]
    public int Invoke()
    {
        var x = _x;
        return _warm.Invoke(() => x + 1);
    }

    [Benchmark(Description = "new sandbox + first call")]
    public int NewSandboxAndFirstCall()
    {
        var x = _x;
        using var runtime = new IsolatedRuntime(_host);
        return runtime.Invoke(() => x + 1);
    }
}

using System.Diagnostics;
using IsolateGrains.Protocol;
using Microsoft.Extensions.Logging;

namespace IsolateGrains.Engine.WarmStart;

/// <summary>
/// Learns which methods a host's sandboxes run and keeps a <see cref="SandboxTemplate"/> in which they are
/// prepared, rebuilding it in the background when a new one appears: new sandboxes then start with the
/// application's assemblies loaded and its lambdas resolved instead of doing that work each. Only the
/// host's own loaders serve the template, and only methods that already ran successfully are learned.
/// </summary>
internal sealed class WarmStartLearner : IDisposable
{
    /// <summary>The most methods a template prepares; later ones are left to their first call.</summary>
    public const int MaxMethods = 512;

    /// <summary>How long a rebuild waits for more new methods to arrive, so that a burst costs one build.</summary>
    private static readonly TimeSpan s_settle = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// The least time between the first builds; it doubles with every build up to <see cref="s_maximumInterval"/>.
    /// A host that keeps meeting new lambdas (at startup, say) rebuilds quickly at first and then ever more
    /// rarely, each build adding everything learned meanwhile. That bounds the templates alive at once: a
    /// replaced template's memory stays as long as sandboxes started from it do.
    /// </summary>
    private static readonly TimeSpan s_minimumInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between two builds.</summary>
    private static readonly TimeSpan s_maximumInterval = TimeSpan.FromSeconds(60);

    private readonly SandboxImage _image;
    private readonly Func<ReadOnlySpan<byte>, byte[]> _hostRequests;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, MethodToPrepare> _learned = [];
    private SandboxTemplate? _current;
    private Task? _worker;
    private int _version;
    private long _lastBuild;
    private bool _disposed;
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _soon = NewSignal();

    /// <summary>Creates a learner whose templates are instances of <paramref name="image"/>, served by <paramref name="hostRequests"/>.</summary>
    public WarmStartLearner(SandboxImage image, Func<ReadOnlySpan<byte>, byte[]> hostRequests, ILogger logger)
    {
        _image = image;
        _hostRequests = hostRequests;
        _logger = logger;
    }

    /// <summary>The template new sandboxes start from, or null while there is none.</summary>
    public SandboxTemplate? Current => Volatile.Read(ref _current);

    /// <summary>How many templates were built.</summary>
    public int Builds { get; private set; }

    /// <summary>Notes that a sandbox ran <paramref name="method"/>; a new one schedules a rebuild.</summary>
    public void Learn(MethodToPrepare method)
    {
        lock (_gate)
        {
            if (_disposed || _learned.Count >= MaxMethods || !_learned.TryAdd(method.Descriptor.Key, method))
            {
                return;
            }
            _version++;
            _worker ??= Task.Run(BuildWhileLearningAsync);
        }
    }

    /// <summary>
    /// Completes when no rebuild is pending or running. A pending rebuild starts without waiting out the
    /// interval between builds: someone is waiting for it (<see cref="IsolatedRuntimeHost.PrepareAsync"/>).
    /// </summary>
    public Task WhenIdleAsync()
    {
        lock (_gate)
        {
            _soon.TrySetResult();
            return _worker ?? Task.CompletedTask;
        }
    }

    /// <summary>Stops learning and releases the template (sandboxes started from it keep working).</summary>
    public void Dispose()
    {
        Task? worker;
        lock (_gate)
        {
            _disposed = true;
            worker = _worker;
        }
        _stop.Cancel();
        // A build in progress uses the image's engine, which the host releases next.
        worker?.Wait();
        _stop.Dispose();
        Interlocked.Exchange(ref _current, null)?.Dispose();
    }

    private async Task BuildWhileLearningAsync()
    {
        while (true)
        {
            var interval = TimeSpan.FromTicks(Math.Min(s_maximumInterval.Ticks, s_minimumInterval.Ticks << Math.Min(Builds, 16)));
            var sinceLast = Stopwatch.GetElapsedTime(_lastBuild);
            var wait = _lastBuild == 0 || sinceLast >= interval - s_settle ? s_settle : interval - sinceLast;
            Task soon;
            lock (_gate)
            {
                soon = _soon.Task;
            }
            // Waits out the interval, unless someone waits for the build or the host goes away.
            await Task.WhenAny(Task.Delay(wait, _stop.Token), soon).ConfigureAwait(false);
            if (soon.IsCompleted)
            {
                await Task.Delay(s_settle, _stop.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            int version;
            MethodToPrepare[] methods;
            lock (_gate)
            {
                if (_disposed)
                {
                    _worker = null;
                    return;
                }
                version = _version;
                methods = [.. _learned.Values];
                if (_soon.Task.IsCompleted)
                {
                    _soon = NewSignal();
                }
            }
            Build(methods);
            lock (_gate)
            {
                if (_disposed || _version == version)
                {
                    _worker = null;
                    return;
                }
            }
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Build(MethodToPrepare[] methods)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            SandboxTemplate template;
            using (var sandbox = new Sandbox(_image, "warm-start-template", _hostRequests))
            {
                // Each template builds on the previous one (which no user code ran in either): only what
                // was learned since is prepared.
                var previous = Current;
                var known = previous is not null && previous.TryApplyTo(sandbox) ? previous.MethodKeys : new HashSet<ulong>();
                var toPrepare = methods.Where(m => !known.Contains(m.Descriptor.Key)).ToList();
                var prepared = known.Concat(GuestRequests.ReadPrepared(sandbox.Call(GuestRequests.Prepare(toPrepare)))).ToList();
                // The template's nursery starts empty, like the image's: dead objects of the preparation stay behind.
                GuestRequests.ReadReply(sandbox.Call(GuestRequests.CollectGarbage()));
                template = SandboxTemplate.Capture(sandbox, prepared);
            }
            Builds++;
            _lastBuild = Stopwatch.GetTimestamp();
            Interlocked.Exchange(ref _current, template)?.Dispose();
            _logger.LogInformation(
                "Warm-start template ready in {Milliseconds:0} ms: {Prepared} of {Learned} methods prepared, {Pages} pages changed ({Kind}).",
                Stopwatch.GetElapsedTime(started).TotalMilliseconds, template.MethodKeys.Count, methods.Length, template.PageIndices.Length,
                template.IsMapped ? "mapped copy-on-write" : "copied");
        }
        catch (Exception e) when (e is IsolatedException or IOException or InvalidOperationException)
        {
            // Sandboxes keep starting from the previous template or the image: slower, never wrong.
            _logger.LogWarning(e, "Building the warm-start template failed; new sandboxes start from the previous one.");
        }
    }
}

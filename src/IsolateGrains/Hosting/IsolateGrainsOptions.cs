namespace IsolateGrains.Hosting;

/// <summary>When an isolate grain saves its sandbox's snapshot to grain storage.</summary>
public enum SnapshotPolicy
{
    /// <summary>After every call (and before the reply is sent): nothing acknowledged is ever lost.</summary>
    WriteThrough,
    /// <summary>Only when the grain deactivates (graceful shutdown included): cheapest, but a silo crash loses the calls since activation.</summary>
    OnDeactivation,
    /// <summary>Every <see cref="IsolateGrainsOptions.SnapshotInterval"/> if anything ran, and on deactivation.</summary>
    Periodic,
}

/// <summary>Where sandboxes on a silo load user assemblies from.</summary>
public enum AssemblySource
{
    /// <summary>
    /// The silo's own bin directory: the code sandboxes run is deployed with the silo. Simple and fast;
    /// new code means redeploying silos.
    /// </summary>
    BinDirectory,
    /// <summary>
    /// Assemblies clients uploaded to the cluster (<c>IGrainFactory.UploadIsolateAssemblies</c>), kept in
    /// grain storage. Clients bring code without redeploying silos; each silo fetches an assembly once
    /// (a blocking grain call the first time a sandbox asks for it) and every uploader is trusted.
    /// </summary>
    Uploaded,
    /// <summary>The bin directory first, then uploads.</summary>
    BinDirectoryThenUploaded,
}

/// <summary>Options of <c>AddIsolateGrains</c>.</summary>
public sealed class IsolateGrainsOptions
{
    /// <summary>The grain storage name used when none is configured.</summary>
    public const string DefaultStorageName = "isolategrains";

    /// <summary>The grain storage provider for sandbox snapshots. If no provider of this name is registered, memory storage is added.</summary>
    public string StorageName { get; set; } = DefaultStorageName;

    /// <summary>When snapshots are saved. Default <see cref="SnapshotPolicy.WriteThrough"/>.</summary>
    public SnapshotPolicy SnapshotPolicy { get; set; } = SnapshotPolicy.WriteThrough;

    /// <summary>The interval of <see cref="SnapshotPolicy.Periodic"/>. Default one minute.</summary>
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Where sandboxes load user assemblies from. Default <see cref="AssemblySource.BinDirectory"/>.</summary>
    public AssemblySource AssemblySource { get; set; } = AssemblySource.BinDirectory;

    /// <summary>Limits and settings of every sandbox on the silo.</summary>
    public IsolatedRuntimeHostOptions Sandbox { get; set; } = new() { Output = _ => { } };
}

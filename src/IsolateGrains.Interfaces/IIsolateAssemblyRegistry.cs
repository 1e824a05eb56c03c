namespace IsolateGrains;

/// <summary>
/// The cluster's store of assemblies uploaded by clients, for silos configured to load sandbox code
/// from uploads rather than from their own bin directory. One registry per cluster (key "default").
/// </summary>
public interface IIsolateAssemblyRegistry : IGrainWithStringKey
{
    /// <summary>Stores (or replaces) an assembly by its simple name.</summary>
    Task Upload(string name, byte[] content);

    /// <summary>An uploaded assembly's bytes, or null.</summary>
    Task<byte[]?> Get(string name);

    /// <summary>The names of the uploaded assemblies.</summary>
    Task<string[]> List();
}

/// <summary>Uploading assemblies to the cluster.</summary>
public static class IsolateAssemblyUpload
{
    /// <summary>The key of the cluster's registry grain.</summary>
    public const string RegistryKey = "default";

    /// <summary>
    /// Uploads <paramref name="assemblies"/> (from their files) so that sandboxes on silos using the
    /// upload policy can load them. Upload once; the cluster keeps them in grain storage.
    /// </summary>
    public static async Task UploadIsolateAssemblies(this IGrainFactory grainFactory, params System.Reflection.Assembly[] assemblies)
    {
        ArgumentNullException.ThrowIfNull(grainFactory);
        var registry = grainFactory.GetGrain<IIsolateAssemblyRegistry>(RegistryKey);
        foreach (var assembly in assemblies)
        {
            if (string.IsNullOrEmpty(assembly.Location))
            {
                throw new ArgumentException($"Assembly '{assembly.GetName().Name}' has no file to upload.", nameof(assemblies));
            }
            await registry.Upload(assembly.GetName().Name!, await File.ReadAllBytesAsync(assembly.Location).ConfigureAwait(false)).ConfigureAwait(false);
        }
    }
}
